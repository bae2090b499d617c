import { sql } from 'kysely';
import { AppError } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/database.ts';
import type { ConcertUpdateInput, PageInput } from '../schemas.ts';
import type { AdminConcert, Page } from '../types.ts';
import { decodeIdCursor } from '../waitlist/waitlist.service.ts';
import { assertStorableText } from './concerts.service.ts';

/** The operators' view of the catalog: every show with its live counts and net revenue. */
export class CatalogService {
  constructor(private readonly deps: { db: Db; clock: Clock }) {}

  async list(page: PageInput): Promise<Page<AdminConcert>> {
    const after = decodeIdCursor(page.cursor);
    let q = this.deps.db.selectFrom('concerts').select(['id', 'title', 'venue']).orderBy('id').limit(page.limit + 1);
    if (after !== undefined) q = q.where('id', '>', after);
    const rows = await q.execute();
    const shown = rows.slice(0, page.limit);
    const items = await this.withSchedules(shown);
    return { items, nextCursor: rows.length > page.limit ? String(shown[shown.length - 1]!.id) : null };
  }

  async update(input: ConcertUpdateInput): Promise<AdminConcert> {
    if (input.title !== undefined) assertStorableText(input.title, 'title');
    if (input.venue !== undefined) assertStorableText(input.venue, 'venue');
    const row = await this.deps.db
      .updateTable('concerts')
      .set({ ...(input.title !== undefined ? { title: input.title } : {}), ...(input.venue !== undefined ? { venue: input.venue } : {}) })
      .where('id', '=', input.concertId)
      .returning(['id', 'title', 'venue'])
      .executeTakeFirst();
    if (!row) throw new AppError('CONCERT_NOT_FOUND', `Concert ${input.concertId} does not exist`);
    return (await this.withSchedules([row]))[0]!;
  }

  private async withSchedules(concerts: Array<{ id: number; title: string; venue: string }>): Promise<AdminConcert[]> {
    if (concerts.length === 0) return [];
    const now = this.deps.clock.now();
    const rows = await this.deps.db
      .selectFrom('schedules as sc')
      .select([
        'sc.id',
        'sc.concert_id',
        'sc.starts_at',
        'sc.booking_opens_at',
        'sc.cancelled_at',
        sql<number>`(SELECT count(*) FILTER (WHERE s.sold_at IS NULL AND (s.reservation_id IS NULL OR s.held_until <= ${now}))::int FROM seats s WHERE s.schedule_id = sc.id)`.as('available'),
        sql<number>`(SELECT count(*) FILTER (WHERE s.sold_at IS NULL AND s.held_until > ${now})::int FROM seats s WHERE s.schedule_id = sc.id)`.as('held'),
        sql<number>`(SELECT count(*) FILTER (WHERE s.sold_at IS NOT NULL)::int FROM seats s WHERE s.schedule_id = sc.id)`.as('sold'),
        sql<number>`(SELECT coalesce(sum(p.amount), 0) FROM payments p JOIN reservations r ON r.id = p.reservation_id WHERE r.schedule_id = sc.id)
          - (SELECT coalesce(sum(f.amount), 0) FROM refunds f JOIN reservations r ON r.id = f.reservation_id WHERE r.schedule_id = sc.id)`.as('revenue'),
      ])
      .where(
        'sc.concert_id',
        'in',
        concerts.map((c) => c.id),
      )
      .orderBy('sc.starts_at')
      .orderBy('sc.id')
      .execute();
    return concerts.map((c) => ({
      concertId: c.id,
      title: c.title,
      venue: c.venue,
      schedules: rows
        .filter((r) => r.concert_id === c.id)
        .map((r) => ({
          scheduleId: r.id,
          startsAt: r.starts_at,
          bookingOpensAt: r.booking_opens_at,
          cancelled: r.cancelled_at !== null,
          // Nothing of a cancelled show is for sale.
          available: r.cancelled_at !== null ? 0 : Number(r.available),
          held: Number(r.held),
          sold: Number(r.sold),
          revenue: Number(r.revenue),
        })),
    }));
  }
}
