// Starts Swagger UI in #swagger-ui with the API description named by its data-spec-url attribute.
// An external file on purpose: the app's Content-Security-Policy (script-src 'self') forbids inline
// script, and the attribute lets the app's /docs page name the description under its own prefix.
(function () {
  'use strict';
  var el = document.getElementById('swagger-ui');
  var spec = (el && el.getAttribute('data-spec-url')) || '/openapi.json';
  // A same-site path only: a description from elsewhere could drive "Try it out" at another server.
  if (!/^\/(?![\/\\])/.test(spec)) spec = '/openapi.json';
  if (typeof window.SwaggerUIBundle !== 'function') {
    el.textContent = 'Swagger UI is not installed (run `make deps`). The API description is at ' + spec + '.';
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: spec,
    dom_id: '#swagger-ui',
    deepLinking: true,
    // Same-origin calls carry the session cookie, so "Try it out" works while signed in.
    withCredentials: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
  });
})();
