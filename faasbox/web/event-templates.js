// Starting points for the Test tab's event editor, in the shapes AWS sends: API Gateway REST
// (payload 1.0) and HTTP API (payload 2.0) proxy events, an SQS batch, EventBridge's
// Scheduled Event. Built for the function being tested (its name in ARNs, a route of its own
// when it has one) and for the moment they are picked (the times).
const ACCOUNT = "000000000000";
const REGION = "us-east-1";

function firstRoute(routes, kind) {
  const route = routes.find((r) => r.kind === kind && r.path !== "$default") || routes.find((r) => r.path !== "$default");
  const method = route && route.method !== "ANY" ? route.method : "GET";
  return { method, path: route ? route.path : "/" };
}

function id() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now().toString(16)}-test`;
}

function apiGatewayV1(fnName, routes) {
  const { method, path } = firstRoute(routes, "http");
  const now = new Date();
  return {
    resource: path,
    path,
    httpMethod: method,
    headers: { Accept: "application/json", "Content-Type": "application/json", Host: location.host },
    multiValueHeaders: { Accept: ["application/json"], "Content-Type": ["application/json"], Host: [location.host] },
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      accountId: ACCOUNT,
      apiId: "faasbox",
      resourcePath: path,
      httpMethod: method,
      path: `/dev${path}`,
      stage: "dev",
      protocol: "HTTP/1.1",
      requestId: id(),
      requestTime: now.toUTCString(),
      requestTimeEpoch: now.getTime(),
      identity: { sourceIp: "127.0.0.1", userAgent: navigator.userAgent },
    },
    body: method === "GET" ? null : JSON.stringify({ hello: "world" }),
    isBase64Encoded: false,
  };
}

function apiGatewayV2(fnName, routes) {
  const { method, path } = firstRoute(routes, "httpApi");
  const now = new Date();
  return {
    version: "2.0",
    routeKey: `${method} ${path}`,
    rawPath: path,
    rawQueryString: "",
    headers: { accept: "application/json", "content-type": "application/json", host: location.host },
    requestContext: {
      accountId: ACCOUNT,
      apiId: "faasbox",
      domainName: location.hostname,
      domainPrefix: location.hostname.split(".")[0],
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: navigator.userAgent },
      requestId: id(),
      routeKey: `${method} ${path}`,
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    body: method === "GET" ? undefined : JSON.stringify({ hello: "world" }),
    isBase64Encoded: false,
  };
}

function sqs(fnName) {
  const now = String(Date.now());
  return {
    Records: [
      {
        messageId: id(),
        receiptHandle: "test-receipt-handle",
        body: JSON.stringify({ hello: "world" }),
        attributes: {
          ApproximateReceiveCount: "1",
          SentTimestamp: now,
          SenderId: ACCOUNT,
          ApproximateFirstReceiveTimestamp: now,
        },
        messageAttributes: {},
        md5OfBody: "",
        eventSource: "aws:sqs",
        eventSourceARN: `arn:aws:sqs:${REGION}:${ACCOUNT}:${fnName}-queue`,
        awsRegion: REGION,
      },
    ],
  };
}

function schedule(fnName) {
  return {
    version: "0",
    id: id(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: ACCOUNT,
    time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
    region: REGION,
    resources: [`arn:aws:events:${REGION}:${ACCOUNT}:rule/${fnName}-schedule`],
    detail: {},
  };
}

export const TEMPLATES = [
  { id: "hello", title: "Hello world (a plain object)", build: () => ({ key1: "value1", key2: "value2" }) },
  { id: "apigw-v1", title: "API Gateway REST (payload 1.0)", build: apiGatewayV1 },
  { id: "apigw-v2", title: "API Gateway HTTP API (payload 2.0)", build: apiGatewayV2 },
  { id: "sqs", title: "SQS message", build: sqs },
  { id: "schedule", title: "Schedule (EventBridge)", build: schedule },
];

export function templateEvent(templateId, fnName, routes) {
  const template = TEMPLATES.find((t) => t.id === templateId) || TEMPLATES[0];
  return template.build(fnName, routes);
}
