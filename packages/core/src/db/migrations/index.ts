import type { Migration } from 'kysely/migration';
import * as initial from './20261123T000000-initial.ts';

/** Every migration, by name; Kysely runs them in name order. */
export const migrations: Record<string, Migration> = {
  '20261123T000000-initial': initial,
};
