// A top-level await that never settles.
await new Promise(() => {});
export const handler = async () => 'unreachable';
