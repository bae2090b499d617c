import type { Migration } from 'kysely/migration';
import * as initial from './20261123T000000-initial.ts';
import * as reservationsUserScheduleIdx from './20261201T110000-reservations-user-schedule-idx.ts';
import * as afterSale from './20261201T130000-after-sale.ts';
import * as statementTimeout from './20261201T140000-statement-timeout.ts';
import * as auditIndexes from './20261201T190000-audit-indexes.ts';
import * as pagedLists from './20261201T200000-paged-lists.ts';
import * as unsoldSeats from './20261201T230000-unsold-seats.ts';
import * as soldOutMark from './20261202T080000-sold-out-mark.ts';
import * as webhookLastAttempt from './20261203T220000-webhook-last-attempt.ts';
import * as holdsEndAtStart from './20261204T210000-holds-end-at-start.ts';
import * as abortFunction from './20261205T030000-abort-function.ts';
import * as isoTime from './20261205T180000-iso-time.ts';
import * as idleTransactionTimeout from './20261205T050000-idle-transaction-timeout.ts';
import * as claimSeats from './20261206T000000-claim-seats.ts';

/** Every migration, by name; Kysely runs them in name order. */
export const migrations: Record<string, Migration> = {
  '20261123T000000-initial': initial,
  '20261201T110000-reservations-user-schedule-idx': reservationsUserScheduleIdx,
  '20261201T130000-after-sale': afterSale,
  '20261201T140000-statement-timeout': statementTimeout,
  '20261201T190000-audit-indexes': auditIndexes,
  '20261201T200000-paged-lists': pagedLists,
  '20261201T230000-unsold-seats': unsoldSeats,
  '20261202T080000-sold-out-mark': soldOutMark,
  '20261203T220000-webhook-last-attempt': webhookLastAttempt,
  '20261204T210000-holds-end-at-start': holdsEndAtStart,
  '20261205T030000-abort-function': abortFunction,
  '20261205T050000-idle-transaction-timeout': idleTransactionTimeout,
  '20261205T180000-iso-time': isoTime,
  '20261206T000000-claim-seats': claimSeats,
};
