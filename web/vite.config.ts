// Build and dev-server settings for the web UI. `npm run build` writes dist/,
// which the API binary serves at / (`maintainpro up` picks web/dist up by
// default). `npm run dev` proxies /api to MP_API (default the API's own
// default address) so the UI can be worked on with hot reload.
import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

const api = process.env.MP_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    proxy: {
      "/api": { target: api, changeOrigin: false, ws: true },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
