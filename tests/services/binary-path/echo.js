// The event a Node.js worker got, back as the response's body (the binary path's tests: other
// runtimes get the whole event's JSON, joined).
exports.handler = async (event) => ({
  statusCode: 200,
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(event),
});
