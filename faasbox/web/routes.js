// The HTTP routes of deployed functions, read from their serverless.yml events as the
// management API reports them (config.events), matched as faasbox's API Gateway matches them.

const splitPath = (path) => path.split("/").filter(Boolean);

function methodAndPath(spec) {
  const [method, ...rest] = String(spec).trim().split(/\s+/);
  return [method.toUpperCase(), rest.join(" ")];
}

// [{method, path, kind, private, function}] of every http (REST) and httpApi event.
export function routesOf(functions) {
  const routes = [];
  for (const fn of functions) {
    for (const event of (fn.config && fn.config.events) || []) {
      const [kind, body] = Object.entries(event)[0] || [];
      let method;
      let path;
      let isPrivate = false;
      if (kind === "http") {
        if (typeof body === "string") [method, path] = methodAndPath(body);
        else {
          method = String(body.method || "").toUpperCase();
          path = String(body.path || "");
          isPrivate = Boolean(body.private);
        }
      } else if (kind === "httpApi") {
        if (typeof body === "string") {
          [method, path] = body.trim() === "*" ? ["ANY", "$default"] : methodAndPath(body);
        } else {
          method = String(body.method || "*").toUpperCase();
          path = String(body.path || "*");
        }
        if (path === "*") path = "$default";
        if (method === "*") method = "ANY";
      } else {
        continue;
      }
      if (path !== "$default") path = "/" + splitPath(path).join("/");
      routes.push({ method, path, kind, private: isPrivate, function: fn.name });
    }
  }
  return routes;
}

// Whether `route` answers `method path` for anyone: not a private route (it needs an API key),
// not the HTTP API's $default catch-all (it would run some other function).
export function routeClaims(route, method, path) {
  if (route.private || route.path === "$default") return false;
  if (route.method !== "ANY" && route.method !== method) return false;
  const want = splitPath(path);
  const have = splitPath(route.path);
  for (let i = 0; i < have.length; i++) {
    if (/^\{.+\+\}$/.test(have[i])) return want.length > i;
    if (i >= want.length) return false;
    if (!/^\{.+\}$/.test(have[i]) && have[i] !== want[i]) return false;
  }
  return have.length === want.length;
}

export function describeRoute(route) {
  return `${route.method} ${route.path}`;
}
