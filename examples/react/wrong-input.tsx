// Must NOT compile: the hold mutation called with seat numbers as strings.
// packages/api/test/pack.test.ts checks that tsc rejects this file against the packed package.
import { useMutation } from '@tanstack/react-query';
import { useTRPC } from './src/trpc';

export function WrongHold() {
  const trpc = useTRPC();
  const hold = useMutation(trpc.reservations.hold.mutationOptions());
  return <button type="button" onClick={() => hold.mutate({ scheduleId: 1, seatNumbers: ['12'], idempotencyKey: crypto.randomUUID() })} />;
}
