// The API explorer at /api/docs: reads the OpenAPI document, lists each
// operation by tag with its parameters, schemas and required permission, and
// sends requests with the token of a sign-in kept in memory only. Data from the
// document or the server is only ever put into the page as text.
(function () {
  "use strict";

  var SPEC_URL = "/api/v1/openapi.json";
  var METHODS = ["get", "post", "put", "patch", "delete"];
  var spec = null;
  var token = null;

  function $(id) { return document.getElementById(id); }

  // el("p", {className: "x", text: "hi"}, [child, "text"]): never parses HTML.
  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) {
      if (k === "text") { node.textContent = props[k]; }
      else if (k === "className") { node.className = props[k]; }
      else { node.setAttribute(k, props[k]); }
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) {
        node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
      }
    });
    return node;
  }

  // ---- schemas -----------------------------------------------------------

  function lookup(ref) {
    if (typeof ref !== "string" || ref.indexOf("#/") !== 0) { return null; }
    return ref.slice(2).split("/").reduce(function (node, part) {
      return node ? node[part.replace(/~1/g, "/").replace(/~0/g, "~")] : null;
    }, spec);
  }

  function refName(ref) { return ref.split("/").pop(); }

  function isNull(s) { return Boolean(s) && (s.type === "null" || (s.enum && s.enum.length === 1 && s.enum[0] === null)); }

  function typesOf(s) {
    var t = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
    return t.filter(function (x) { return x !== "null"; });
  }

  function nullable(s) {
    if (!s) { return false; }
    if (s.nullable || (Array.isArray(s.type) && s.type.indexOf("null") >= 0)) { return true; }
    return (s.oneOf || s.anyOf || []).some(isNull);
  }

  function alternatives(s) { return (s.oneOf || s.anyOf || []).filter(function (x) { return !isNull(x); }); }

  // A readable JSON shape of a schema: objects with their fields ("name?" when
  // optional), arrays of one element, and leaf types as strings.
  function shape(s, seen) {
    seen = seen || [];
    if (!s || s === true) { return "any"; }
    if (s.$ref) {
      var name = refName(s.$ref);
      if (seen.indexOf(name) >= 0) { return "<" + name + ">"; }
      return shape(lookup(s.$ref), seen.concat([name]));
    }
    if (s.allOf) {
      return s.allOf.map(function (p) { return shape(p, seen); }).reduce(function (acc, p) {
        return typeof p === "object" && !Array.isArray(p) ? Object.assign(acc, p) : acc;
      }, {});
    }
    var alts = alternatives(s);
    if (alts.length === 1 && !s.properties) {
      var one = shape(alts[0], seen);
      return typeof one === "string" ? one + " | null" : one;
    }
    if (alts.length > 1) { return { oneOf: alts.map(function (a) { return shape(a, seen); }) }; }
    var suffix = nullable(s) ? " | null" : "";
    if (s.enum) { return s.enum.filter(function (v) { return v !== null; }).join(" | ") + suffix; }
    var types = typesOf(s);
    if (s.properties || types.indexOf("object") >= 0) {
      var out = {};
      var required = s.required || [];
      Object.keys(s.properties || {}).forEach(function (k) {
        out[required.indexOf(k) >= 0 ? k : k + "?"] = shape(s.properties[k], seen);
      });
      if (s.additionalProperties) { out["<key>"] = shape(s.additionalProperties, seen); }
      return out;
    }
    if (types.indexOf("array") >= 0) { return [shape(s.items, seen)]; }
    if (!types.length) { return "any"; }
    return types.join(" | ") + (s.format ? " (" + s.format + ")" : "") + suffix;
  }

  // A sample value for a request body: required fields and non-nullable
  // optional ones, with placeholder values by type and format.
  function example(s, seen) {
    seen = seen || [];
    if (!s || s === true) { return null; }
    if (s.example !== undefined) { return s.example; }
    if (s.$ref) {
      var name = refName(s.$ref);
      if (seen.indexOf(name) >= 0) { return null; }
      return example(lookup(s.$ref), seen.concat([name]));
    }
    if (s.allOf) {
      return s.allOf.reduce(function (acc, p) { return Object.assign(acc, example(p, seen)); }, {});
    }
    var alts = alternatives(s);
    if (alts.length && !s.properties) { return example(alts[0], seen); }
    if (s.default !== undefined) { return s.default; }
    if (s.enum) { return s.enum[0]; }
    var types = typesOf(s);
    if (s.properties || types.indexOf("object") >= 0) {
      var out = {};
      var required = s.required || [];
      var keys = Object.keys(s.properties || {});
      // Required fields first, as a person would fill them in.
      keys.filter(function (k) { return required.indexOf(k) >= 0; })
        .concat(keys.filter(function (k) { return required.indexOf(k) < 0; })).forEach(function (k) {
        var p = s.properties[k];
        if (required.indexOf(k) >= 0 || !nullable(p)) { out[k] = example(p, seen); }
      });
      return out;
    }
    switch (types[0]) {
      case "array": return [example(s.items, seen)];
      case "integer": case "number": return s.minimum || 0;
      case "boolean": return false;
      case "string":
        if (s.format === "uuid") { return "00000000-0000-0000-0000-000000000000"; }
        if (s.format === "date-time") { return new Date().toISOString(); }
        if (s.format === "date") { return new Date().toISOString().slice(0, 10); }
        if (s.format === "email") { return "someone@example.com"; }
        return "";
      default: return null;
    }
  }

  function pretty(value) { return JSON.stringify(value, null, 2); }

  // ---- operations --------------------------------------------------------

  // {"bearer": ["x:y"]} requires permission x:y; [] any signed-in user; none: public.
  function access(op) {
    var reqs = op.security || spec.security || [];
    if (!reqs.length) { return { kind: "public", text: "public" }; }
    var scopes = [];
    reqs.forEach(function (r) { Object.keys(r).forEach(function (k) { scopes = scopes.concat(r[k] || []); }); });
    if (scopes.length) { return { kind: "permission", text: "permission " + scopes.join(", ") }; }
    return { kind: "signed-in", text: "any signed-in user" };
  }

  function operations() {
    var ops = [];
    Object.keys(spec.paths || {}).forEach(function (path) {
      var item = spec.paths[path];
      METHODS.forEach(function (method) {
        var op = item[method];
        if (!op) { return; }
        var params = (item.parameters || []).concat(op.parameters || []).map(function (p) {
          return p.$ref ? lookup(p.$ref) : p;
        }).filter(Boolean);
        ops.push({ path: path, method: method, op: op, params: params, access: access(op) });
      });
    });
    return ops;
  }

  function jsonSchemaOf(content) {
    if (!content) { return null; }
    var type = Object.keys(content).filter(function (t) { return t.indexOf("json") >= 0; })[0] || Object.keys(content)[0];
    return type ? { type: type, schema: content[type].schema } : null;
  }

  function renderBody(entry) {
    var op = entry.op;
    var body = el("div", { className: "body" });
    if (op.description) { body.appendChild(el("p", { className: "desc", text: op.description })); }
    body.appendChild(el("p", {}, [el("strong", { text: "Access: " }), entry.access.text]));

    if (entry.params.length) {
      body.appendChild(el("h3", { text: "Parameters" }));
      var rows = entry.params.map(function (p) {
        var type = shape(p.schema);
        return el("tr", {}, [
          el("td", { className: "path", text: p.name + (p.required ? "" : "?") }),
          el("td", { text: p.in }),
          el("td", { text: typeof type === "string" ? type : pretty(type) }),
          el("td", { text: p.description || "" }),
        ]);
      });
      body.appendChild(el("table", {}, [el("tr", {}, ["name", "in", "type", "description"].map(function (h) {
        return el("th", { text: h });
      }))].concat(rows)));
    }

    var reqBody = op.requestBody && (op.requestBody.$ref ? lookup(op.requestBody.$ref) : op.requestBody);
    var reqContent = reqBody && jsonSchemaOf(reqBody.content);
    if (reqContent) {
      body.appendChild(el("h3", { text: "Request body (" + reqContent.type + ")" }));
      body.appendChild(el("pre", { text: pretty(shape(reqContent.schema)) }));
    }

    body.appendChild(el("h3", { text: "Responses" }));
    Object.keys(op.responses || {}).forEach(function (status) {
      var r = op.responses[status];
      r = r.$ref ? lookup(r.$ref) || {} : r;
      var content = jsonSchemaOf(r.content);
      body.appendChild(el("div", {}, [
        el("strong", { text: status + " " }),
        (r.description || "") + (content ? " (" + content.type + ")" : ""),
      ]));
      if (content && content.schema) {
        // Success shapes open; the (repetitive) error envelope folded.
        var name = content.schema.$ref ? refName(content.schema.$ref) : "schema";
        var fold = el("details", { className: "schema" }, [el("summary", { text: name }),
          el("pre", { text: pretty(shape(content.schema)) })]);
        fold.open = status.charAt(0) === "2";
        body.appendChild(fold);
      }
    });

    body.appendChild(renderTry(entry, reqContent));
    return body;
  }

  function renderTry(entry, reqContent) {
    var form = el("form", { className: "try" }, [el("h3", { text: "Try it" })]);
    var inputs = entry.params.filter(function (p) { return p.in === "path" || p.in === "query"; }).map(function (p) {
      var hint = shape(p.schema);
      var input = el("input", { placeholder: typeof hint === "string" ? hint : pretty(hint) });
      if (p.required) { input.required = true; }
      form.appendChild(el("label", {}, [el("span", { text: p.name + " (" + p.in + ")" }), input]));
      return { param: p, input: input };
    });
    var textarea = null;
    if (reqContent) {
      textarea = el("textarea", { spellcheck: "false", "aria-label": "request body" });
      textarea.value = pretty(example(reqContent.schema));
      form.appendChild(textarea);
    }
    var button = el("button", { type: "submit", text: "Send" });
    form.appendChild(el("p", {}, [button, " ", el("span", { className: "muted", text: token ? "" : "(not signed in)" })]));
    var result = el("div", { className: "result" });
    form.appendChild(result);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      button.disabled = true;
      send(entry, inputs, textarea, result).finally(function () { button.disabled = false; });
    });
    return form;
  }

  var lastObjectUrl = null;

  async function send(entry, inputs, textarea, result) {
    result.replaceChildren();
    var fail = function (msg) { result.appendChild(el("p", { className: "error", text: msg })); };
    var url = entry.path;
    var query = new URLSearchParams();
    for (var i = 0; i < inputs.length; i++) {
      var p = inputs[i].param;
      var v = inputs[i].input.value.trim();
      if (p.in === "path") {
        if (!v) { return fail("Fill in the path parameter " + p.name + "."); }
        url = url.split("{" + p.name + "}").join(encodeURIComponent(v));
      } else if (v) {
        query.append(p.name, v);
      }
    }
    if (query.toString()) { url += "?" + query.toString(); }
    var init = { method: entry.method.toUpperCase(), headers: { accept: "application/json, */*" }, credentials: "omit" };
    if (token) { init.headers.authorization = "Bearer " + token; }
    if (textarea && textarea.value.trim()) {
      try { JSON.parse(textarea.value); } catch (e) { return fail("The body is not valid JSON: " + e.message); }
      init.headers["content-type"] = "application/json";
      init.body = textarea.value;
    }
    var started = performance.now();
    var res;
    try { res = await fetch(url, init); } catch (e) { return fail("Request failed: " + e.message); }
    var ms = Math.round(performance.now() - started);
    result.appendChild(el("p", {}, [
      el("span", { className: "status " + (res.ok ? "ok" : "fail"), text: res.status + " " + res.statusText }),
      " " + init.method + " " + url + " · " + ms + " ms",
    ]));
    var headers = [];
    res.headers.forEach(function (value, name) { headers.push(name + ": " + value); });
    result.appendChild(el("pre", { text: headers.join("\n") }));
    var type = res.headers.get("content-type") || "";
    if (type.indexOf("image/") === 0) {
      if (lastObjectUrl) { URL.revokeObjectURL(lastObjectUrl); }
      lastObjectUrl = URL.createObjectURL(await res.blob());
      result.appendChild(el("img", { className: "preview", src: lastObjectUrl, alt: "response image" }));
      return;
    }
    var text = await res.text();
    var shown = text;
    if (type.indexOf("json") >= 0) {
      try { shown = pretty(JSON.parse(text)); } catch (e) { shown = text; }
    }
    result.appendChild(el("pre", { text: shown || "(empty body)" }));
  }

  // ---- page --------------------------------------------------------------

  function render() {
    var info = spec.info || {};
    $("title").textContent = (info.title || "API") + (info.version ? " " + info.version : "");
    $("intro").textContent = info.description || "";
    var tagInfo = {};
    var order = (spec.tags || []).map(function (t) { tagInfo[t.name] = t; return t.name; });
    var groups = {};
    operations().forEach(function (entry) {
      var tag = (entry.op.tags && entry.op.tags[0]) || "other";
      if (order.indexOf(tag) < 0) { order.push(tag); }
      (groups[tag] = groups[tag] || []).push(entry);
    });
    var root = $("ops");
    root.replaceChildren();
    order.filter(function (t) { return groups[t]; }).forEach(function (tag) {
      var section = el("section", { className: "tag" }, [el("h2", { text: tag })]);
      if (tagInfo[tag] && tagInfo[tag].description) {
        section.appendChild(el("p", { className: "tag-desc", text: tagInfo[tag].description }));
      }
      groups[tag].forEach(function (entry) {
        var d = el("details", { className: "op" }, [el("summary", {}, [
          el("span", { className: "method " + entry.method, text: entry.method }),
          el("span", { className: "path", text: entry.path }),
          el("span", { className: "summary", text: entry.op.summary || "" }),
          el("span", { className: "access " + entry.access.kind, text: entry.access.text }),
        ])]);
        if (entry.op.operationId) { d.id = entry.op.operationId; }
        d.dataset.search = [entry.method, entry.path, entry.op.summary, entry.op.operationId, tag, entry.access.text]
          .join(" ").toLowerCase();
        // Built on first open: the document is large.
        d.addEventListener("toggle", function () {
          if (d.open && d.children.length === 1) { d.appendChild(renderBody(entry)); }
          if (d.open && d.id) { history.replaceState(null, "", "#" + d.id); }
        });
        section.appendChild(d);
      });
      root.appendChild(section);
    });
    var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
    if (target && target.tagName === "DETAILS") { target.open = true; target.scrollIntoView(); }
  }

  function applyFilter() {
    var q = $("filter").value.trim().toLowerCase();
    document.querySelectorAll("section.tag").forEach(function (section) {
      var visible = 0;
      section.querySelectorAll("details.op").forEach(function (d) {
        var match = !q || d.dataset.search.indexOf(q) >= 0;
        d.hidden = !match;
        if (match) { visible++; }
      });
      section.hidden = visible === 0;
    });
  }

  function setSignedIn(user) {
    $("signin").hidden = Boolean(user);
    $("who").hidden = !user;
    $("who-text").textContent = user ? "Signed in as " + user.email + " (" + user.role + ")" : "";
    document.querySelectorAll(".try .muted").forEach(function (m) { m.textContent = user ? "" : "(not signed in)"; });
  }

  async function signIn(ev) {
    ev.preventDefault();
    var error = $("signin-error");
    error.hidden = true;
    try {
      var res = await fetch("/api/v1/auth/login", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ email: $("email").value.trim(), password: $("password").value }),
        credentials: "omit",
      });
      var json = await res.json().catch(function () { return null; });
      if (!res.ok || !json || !json.success) {
        throw new Error((json && json.error && json.error.message) || "sign-in failed (" + res.status + ")");
      }
      token = json.data.accessToken;
      $("password").value = "";
      setSignedIn(json.data.user || { email: $("email").value, role: "?" });
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  }

  async function load() {
    try {
      var res = await fetch(SPEC_URL, { headers: { accept: "application/json" }, credentials: "omit" });
      if (!res.ok) { throw new Error(SPEC_URL + " answered " + res.status); }
      spec = await res.json();
      render();
      applyFilter();
    } catch (e) {
      $("ops").replaceChildren(el("p", { className: "error", text: "Cannot load the API description: " + e.message }));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("signin").addEventListener("submit", signIn);
    $("signout").addEventListener("click", function () { token = null; setSignedIn(null); });
    $("filter").addEventListener("input", applyFilter);
    load();
  });
})();
