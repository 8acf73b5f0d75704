// Imports a package that is not installed.
import 'not-installed-anywhere';
export const handler = async () => 'unreachable';
