import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { appCodeOf, useTRPC } from './trpc';

/** The seat map of one show (concerts.seats) and a hold on the seats picked (reservations.hold). */
export function HoldSeats({ scheduleId }: { scheduleId: number }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [picked, setPicked] = useState<number[]>([]);
  const seats = useQuery(trpc.concerts.seats.queryOptions({ scheduleId }));
  const hold = useMutation(
    trpc.reservations.hold.mutationOptions({
      onSettled: () => queryClient.invalidateQueries({ queryKey: trpc.concerts.seats.queryKey({ scheduleId }) }),
    }),
  );

  if (hold.data) {
    return (
      <p>
        Held {hold.data.seats.map((s) => s.seatNumber).join(', ')} until {hold.data.holdExpiresAt.toLocaleTimeString()}: pay{' '}
        {hold.data.totalPrice.toLocaleString()} won.
      </p>
    );
  }
  if (seats.isPending) return <p>Loading seats…</p>;
  if (seats.isError) return <p role="alert">{appCodeOf(seats.error) ?? seats.error.message}</p>;
  const toggle = (n: number) => setPicked((p) => (p.includes(n) ? p.filter((x) => x !== n) : [...p, n]));
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        hold.mutate({ scheduleId, seatNumbers: picked, idempotencyKey: crypto.randomUUID() });
      }}
    >
      {seats.data.seats.map((s) => (
        <label key={s.seatNumber}>
          <input type="checkbox" disabled={s.status !== 'AVAILABLE'} checked={picked.includes(s.seatNumber)} onChange={() => toggle(s.seatNumber)} />
          {s.seatNumber}
        </label>
      ))}
      <button type="submit" disabled={picked.length === 0 || hold.isPending}>
        Hold {picked.length} seats
      </button>
      {hold.isError && <p role="alert">{appCodeOf(hold.error) === 'SEAT_UNAVAILABLE' ? 'Someone was quicker; pick again.' : hold.error.message}</p>}
    </form>
  );
}
