// Writes console records at three levels; answers the trace id it saw.
exports.handler = async (event) => {
  console.debug('node debug');
  console.info('node info');
  console.warn('node warning', { marker: event.marker });
  return { traceId: process.env._X_AMZN_TRACE_ID ?? null };
};
