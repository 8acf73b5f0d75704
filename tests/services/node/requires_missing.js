// Requires a package that is not installed.
require('not-installed-anywhere');
exports.handler = async () => 'unreachable';
