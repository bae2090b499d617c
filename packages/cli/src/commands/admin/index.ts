import type { Command } from 'commander';
import * as audit from './audit.ts';
import * as concerts from './concerts.ts';
import * as holds from './holds.ts';
import * as queue from './queue.ts';
import * as refund from './refund.ts';
import * as release from './release.ts';
import * as schedules from './schedules.ts';
import * as seedDemo from './seed-demo.ts';
import * as users from './users.ts';
import * as watch from './watch.ts';
import * as webhooks from './webhooks.ts';

/** `concert admin …`, in the order `concert help admin` lists them. Add a module here to add an operator command. */
const COMMANDS: Array<{ register(admin: Command): void }> = [users, concerts, schedules, seedDemo, holds, release, refund, audit, queue, watch, webhooks];

export function register(program: Command): void {
  const admin = program.command('admin').description('Operator commands (need --admin-key or CONCERT_ADMIN_KEY).');
  for (const command of COMMANDS) command.register(admin);
}
