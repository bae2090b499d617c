import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// concert.sold_out was written by the payment that sold a show's last seat, in its transaction,
// after a check that could not see payments racing it: two payments of the last two seats each
// saw the other's seat unsold, and the show sold out with no event. The sell-out is now
// announced after the sales commit, by whoever first sees it (the read of the show's seats that
// follows every change, and a periodic sweep), and schedules.sold_out_at records that it was:
// marking is one conditional UPDATE of the schedule's row, so it happens once. A refund that
// returns a seat clears it, so a second sell-out is announced again. Shows sold out before this
// migration are marked as of their last sale where their event was written; one the old race
// left unannounced stays unmarked, for the sweep to announce if it has not started.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE schedules ADD COLUMN sold_out_at timestamptz`.execute(db);
  await sql`
    UPDATE schedules sc SET sold_out_at = last.at
    FROM (SELECT schedule_id, max(sold_at) AS at FROM seats GROUP BY schedule_id HAVING bool_and(sold_at IS NOT NULL)) last
    WHERE sc.id = last.schedule_id
      AND EXISTS (SELECT 1 FROM outbox_events e WHERE e.type = 'concert.sold_out' AND e.schedule_id = sc.id)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE schedules DROP COLUMN sold_out_at`.execute(db);
}
