// .js under "type": "module": an ES module.
export async function handler() {
  return { module: typeof module === 'undefined' ? 'esm' : 'commonjs' };
}
