import { useCallback, useEffect, useState } from 'react';
import { loadChoices, type Choices } from './api';

/**
 * The account's workflows and models for the create and edit dialogs (empty lists, named `unavailable`,
 * when they cannot be read), loaded with the page so the dialogs have them at once; `reload` fetches them again (when a
 * dialog opens), showing the previous lists meanwhile.
 */
export function useChoices(enabled: boolean, canReadWorkflows: boolean): { readonly choices: Choices | null; readonly reload: () => void } {
  const [choices, setChoices] = useState<Choices | null>(null);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    if (!enabled) return undefined;
    let current = true;
    loadChoices(canReadWorkflows).then(
      (c) => {
        if (current) setChoices(c);
      },
      () => {
        if (current) setChoices((old) => old ?? { workflows: [], models: [], unavailable: ['workflows', 'models'] });
      },
    );
    return () => {
      current = false;
    };
  }, [enabled, canReadWorkflows, version]);
  const reload = useCallback(() => setVersion((v) => v + 1), []);
  return { choices, reload };
}

/** The workspaces a dialog offers: the default one and every workflow's. */
export function knownWorkspaces(choices: Choices | null): string[] {
  return [...new Set(['default', ...(choices?.workflows.map((w) => w.workspace_id) ?? [])])];
}
