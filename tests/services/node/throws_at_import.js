// Fails while it is loaded.
class ConfigError extends Error {}
ConfigError.prototype.name = 'ConfigError';
throw new ConfigError('missing setting at import');
