// oidc-provider's own in-memory storage (sessions, interactions, codes, grants), used through its factory:
// passing it as `adapter` keeps the library's code and leaves out the warning that the default adapter
// prints, which is meant for production servers (a restart of the local provider forgetting its sessions
// is what we want). The version is pinned exactly in package.json; a move of this file fails the tests.
declare module 'oidc-provider/lib/adapters/memory_adapter.js' {
  import type { AdapterFactory } from 'oidc-provider';

  export function createMemoryAdapter(clockTolerance?: number): AdapterFactory;
}
