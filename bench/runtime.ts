/**
 * Benchmarks measure the compiled service (dist/, what `npm start` and the container run), not the
 * TypeScript sources through tsx, whose name-keeping wrappers would add their own cost. Types come
 * from src/, so the benchmark code is still type-checked against the sources.
 */
export async function load<M>(path: string): Promise<M> {
  return (await import(new URL(`../dist/${path}`, import.meta.url).href)) as M;
}
