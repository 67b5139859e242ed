// Jest loads global setup outside its transform, so the TypeScript setup is imported through tsx.
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup() {
  const { setup } = await tsImport('./setup.ts', import.meta.url);
  globalThis.__knoudsTeardown = await setup();
}
