/**
 * What a booking step asks of the waiting room: the caller's token must be ACTIVE for the
 * concert concerned. Built per request from the caller's identity and x-queue-token header.
 */
export interface QueueGate {
  assertActive(concertId: number): Promise<void>;
}
