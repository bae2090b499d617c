import type { Clock } from '../clock.ts';
import { type Db, type Tx, transaction } from '../db/database.ts';
import { applyLedgerEntry } from '../balance/balance.repository.ts';
import { analyzeSeatsAfterCreate, assertStorableText, createConcertIn } from '../concerts/concerts.service.ts';
import type { CreateConcertInput, CreateUserInput } from '../schemas.ts';
import type { AuditReport } from '../types.ts';
import { insertUser } from '../users/users.repository.ts';
import * as repo from './admin.repository.ts';

const DEMO_SEED_KEY = 'demo_seed';
const DAY = 24 * 3600_000;

export class AdminService {
  constructor(private readonly deps: { db: Db; clock: Clock }) {}

  async createUser(input: CreateUserInput): Promise<{ userId: number; name: string; balance: number }> {
    return transaction(this.deps.db, (trx) => createUserIn(trx, input, this.deps.clock.now()));
  }

  /** Demo concerts and users, once per database however often or from how many processes it is called. */
  async seedDemo(): Promise<{ concertIds: number[]; userIds: number[] }> {
    const { seeded, created } = await transaction(this.deps.db, async (trx) => {
      await repo.lockJob(trx, DEMO_SEED_KEY);
      const existing = await repo.findMeta(trx, DEMO_SEED_KEY);
      if (existing) return { seeded: JSON.parse(existing.value) as { concertIds: number[]; userIds: number[] }, created: false };
      const now = this.deps.clock.now();
      const concertIds: number[] = [];
      for (const concert of demoConcerts(now)) concertIds.push((await createConcertIn(trx, concert, now)).concertId);
      const userIds: number[] = [];
      for (const name of DEMO_USERS) userIds.push((await createUserIn(trx, { name, initialBalance: 1_000_000 }, now)).userId);
      const seeded = { concertIds, userIds };
      await repo.insertMeta(trx, DEMO_SEED_KEY, JSON.stringify(seeded));
      return { seeded, created: true };
    });
    // Only by the call that wrote them (every process may call this at its start).
    if (created) await analyzeSeatsAfterCreate(this.deps.db);
    return seeded;
  }

  async isSeeded(): Promise<boolean> {
    return (await repo.findMeta(this.deps.db, DEMO_SEED_KEY)) !== undefined;
  }

  async audit(): Promise<AuditReport> {
    const violations = await repo.runAudit(this.deps.db);
    const checks = repo.AUDIT_CHECKS.map((check, i) => ({ name: check.name, ok: violations[i] === 0, detail: check.describe(violations[i]!) }));
    return { ok: checks.every((c) => c.ok), checks };
  }
}

/** An operator's grant is a CHARGE in the ledger, but not the user's own: it does not count toward the monthly cap. */
async function createUserIn(trx: Tx, input: CreateUserInput, now: Date) {
  assertStorableText(input.name, 'name');
  const user = await insertUser(trx, input.name);
  if (input.initialBalance <= 0) return { userId: user.id, name: user.name, balance: 0 };
  const { balance } = await applyLedgerEntry(trx, {
    user_id: user.id,
    kind: 'CHARGE',
    source: 'ADMIN',
    amount: input.initialBalance,
    reservation_id: null,
    payment_id: null,
    created_at: now,
  });
  return { userId: user.id, name: user.name, balance };
}

const DEMO_USERS = ['Demo Fan 1', 'Demo Fan 2', 'Demo Fan 3', 'Demo Fan 4', 'Demo Fan 5'];

/** Bookable at once: open since an hour ago, shows one to four weeks ahead, in three grades. */
function demoConcerts(now: Date): CreateConcertInput[] {
  const opens = new Date(now.getTime() - 3600_000);
  const at = (days: number) => new Date(Math.floor((now.getTime() + days * DAY) / 3600_000) * 3600_000);
  const tiers = [
    { grade: 'VIP', price: 150_000, fromSeat: 1, toSeat: 10 },
    { grade: 'R', price: 100_000, fromSeat: 11, toSeat: 30 },
    { grade: 'S', price: 70_000, fromSeat: 31, toSeat: 50 },
  ];
  const shows = (days: number[]) => days.map((d) => ({ startsAt: at(d), bookingOpensAt: opens, seatCount: 50, tiers }));
  return [
    { title: 'Aurora Live in Seoul', venue: 'Olympic Hall', schedules: shows([7, 8, 14]) },
    { title: 'The Midnight Strings', venue: 'Sejong Center', schedules: shows([10, 21]) },
    { title: 'Neon Harbor Festival', venue: 'Busan Asiad Stadium', schedules: shows([28, 29, 30]) },
  ];
}
