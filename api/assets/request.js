// The request form opened from an asset's QR code (/request?asset=<equipment id>).
// Signs in through the API when there is no token in this tab, shows the asset
// and files a work request for it. Data from the server is only ever put into
// the page with textContent.
(function () {
  "use strict";

  var TOKEN_KEY = "maintainpro.accessToken";
  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  var assetId = new URLSearchParams(window.location.search).get("asset");

  function $(id) { return document.getElementById(id); }
  function show(id, on) { $(id).hidden = !on; }

  function getToken() {
    try { return window.sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }
  function setToken(token) {
    try {
      if (token) { window.sessionStorage.setItem(TOKEN_KEY, token); }
      else { window.sessionStorage.removeItem(TOKEN_KEY); }
    } catch (e) { /* storage disabled: the token lives as long as the page */ }
    memoryToken = token;
  }
  var memoryToken = getToken();

  // Calls the API; resolves with the envelope's data or rejects with an
  // Error carrying status, code and field details from the error envelope.
  async function api(method, path, body) {
    var headers = { accept: "application/json" };
    if (memoryToken) { headers.authorization = "Bearer " + memoryToken; }
    if (body !== undefined) { headers["content-type"] = "application/json"; }
    var res;
    try {
      res = await fetch(path, {
        method: method,
        headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "omit",
      });
    } catch (e) {
      throw Object.assign(new Error("Cannot reach the server. Check the connection and try again."), { status: 0 });
    }
    var json = null;
    try { json = await res.json(); } catch (e) { json = null; }
    if (res.ok && json && json.success) { return json.data; }
    var err = (json && json.error) || {};
    throw Object.assign(new Error(err.message || "The server answered " + res.status + "."), {
      status: res.status,
      code: err.code,
      details: Array.isArray(err.details) ? err.details : [],
    });
  }

  function clearError() {
    show("error", false);
    $("error-message").textContent = "";
    $("error-details").replaceChildren();
  }

  function showError(err) {
    $("error-message").textContent = err.message || String(err);
    var list = $("error-details");
    list.replaceChildren();
    (err.details || []).forEach(function (d) {
      var li = document.createElement("li");
      li.textContent = (d.field ? d.field + ": " : "") + (d.message || "");
      list.appendChild(li);
    });
    show("error", true);
  }

  function notice(text) {
    $("notice").textContent = text || "";
    show("notice", Boolean(text));
  }

  function askToSignIn(message) {
    setToken(null);
    show("request", false);
    show("signout", false);
    show("login", true);
    notice(message || "Sign in to report a problem.");
    $("email").focus();
  }

  async function loadAsset() {
    if (!assetId) {
      notice("This link names no asset: describe where the problem is.");
      return true;
    }
    var eq = await api("GET", "/api/v1/equipment/" + encodeURIComponent(assetId));
    $("asset-tag").textContent = eq.assetTag || "";
    $("asset-name").textContent = eq.name || "";
    $("asset-location").textContent = eq.location || "";
    show("asset", true);
    document.title = "Report a problem: " + (eq.assetTag || "asset") + " · MaintAInPro";
    return true;
  }

  async function start() {
    clearError();
    notice("");
    show("done", false);
    if (assetId && !UUID.test(assetId)) {
      showError(new Error("This QR code does not name a valid asset."));
      return;
    }
    if (!memoryToken) {
      askToSignIn();
      return;
    }
    show("login", false);
    show("signout", true);
    try {
      await loadAsset();
    } catch (err) {
      if (err.status === 401) { askToSignIn("Your session has ended: sign in again."); return; }
      if (err.status === 404) { err.message = "This asset was not found in your organization."; }
      showError(err);
      return;
    }
    show("request", true);
    $("title").focus();
  }

  async function onLogin(event) {
    event.preventDefault();
    clearError();
    var button = event.submitter || $("login").querySelector("button");
    button.disabled = true;
    try {
      var data = await api("POST", "/api/v1/auth/login", {
        email: $("email").value.trim(),
        password: $("password").value,
      });
      $("password").value = "";
      setToken(data.accessToken);
      await start();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  }

  async function onRequest(event) {
    event.preventDefault();
    clearError();
    var button = event.submitter || $("request").querySelector("button");
    button.disabled = true;
    try {
      var filed = await api("POST", "/api/v1/requests", {
        title: $("title").value.trim(),
        description: $("description").value.trim(),
        equipmentId: assetId || null,
      });
      show("request", false);
      $("done-text").textContent = "“" + filed.title + "” is waiting for review (status: " + filed.status +
        "). Reference " + String(filed.id).slice(-12) + ".";
      show("done", true);
      $("title").value = "";
      $("description").value = "";
    } catch (err) {
      // The form keeps what was typed: after signing in again, send it again.
      if (err.status === 401) { askToSignIn("Your session has ended: sign in again, then send."); }
      else { showError(err); }
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("login").addEventListener("submit", onLogin);
    $("request").addEventListener("submit", onRequest);
    $("another").addEventListener("click", function () { start(); });
    $("signout").addEventListener("click", function () {
      show("asset", false);
      askToSignIn("Signed out.");
    });
    start();
  });
})();
