import { useEffect, useState } from 'react';
import { loadChoices, type Choices } from './api';

/** The account's workflows and models for the dialogs (empty lists when they cannot be read). */
export function useChoices(canReadWorkflows: boolean): Choices | null {
  const [choices, setChoices] = useState<Choices | null>(null);
  useEffect(() => {
    let current = true;
    loadChoices(canReadWorkflows).then((c) => {
      if (current) setChoices(c);
    }, () => {
      if (current) setChoices({ workflows: [], models: [] });
    });
    return () => {
      current = false;
    };
  }, [canReadWorkflows]);
  return choices;
}

/** The workspaces a dialog offers: the default one and every workflow's. */
export function knownWorkspaces(choices: Choices | null): string[] {
  return [...new Set(['default', ...(choices?.workflows.map((w) => w.workspace_id) ?? [])])];
}
