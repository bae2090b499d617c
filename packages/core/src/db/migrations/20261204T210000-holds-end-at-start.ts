import { type Kysely, sql } from 'kysely';

// Frozen in time: takes Kysely<any> and imports no app code.
// A hold (and a waitlist offer, which is a hold) now never outlasts its show's start: a hold
// made minutes before a show was payable minutes into it, and then not refundable. The holds
// made before this release are capped the same way, so none of them can be paid after its show
// starts either (a hold's expiry is what the payment checks).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    UPDATE reservations r SET hold_expires_at = sc.starts_at
    FROM schedules sc
    WHERE sc.id = r.schedule_id AND r.status = 'HELD' AND r.hold_expires_at > sc.starts_at`.execute(db);
  await sql`
    UPDATE seats s SET held_until = sc.starts_at
    FROM schedules sc
    WHERE sc.id = s.schedule_id AND s.sold_at IS NULL AND s.held_until > sc.starts_at`.execute(db);
}

// Nothing to undo: a capped hold stays capped.
export async function down(): Promise<void> {}
