/** Reading a synthesized template in tests: its resources by type, and the one logical id a path names. */
import { expect } from '@jest/globals';
import type { Template } from 'aws-cdk-lib/assertions';

export type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };

export function templateResources(template: Template) {
  const resources = template.toJSON()['Resources'] as Record<string, Resource>;
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
  /** The logical id of the one resource of `type` whose id contains `pathPart` (fails unless exactly one). */
  const logicalId = (type: string, pathPart: string) => {
    const found = ofType(type).filter(([id]) => id.includes(pathPart));
    expect(found).toHaveLength(1);
    return found[0]![0];
  };
  return { resources, ofType, logicalId };
}
