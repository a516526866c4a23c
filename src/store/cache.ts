/** A port module that caches reads: the store drops the cache when a transaction fails. */
export interface Cache {
  dropCache(): void;
}
