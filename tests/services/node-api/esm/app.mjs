// An ES module handler.
import { platform } from 'node:os';

export const handler = async (event) => ({
  statusCode: 200,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ module: 'esm', path: event.rawPath, platform: platform() }),
});
