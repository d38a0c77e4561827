// How many messages a listener receives at once (SMTP_MAX_TRANSACTIONS): from the first recipient
// accepted to the reply after DATA (a session whose recipients are all refused, a dictionary
// attack, holds no place). Past the limit the reply to a new message's first accepted RCPT TO
// waits, first come first served,
// so that under load the messages already in progress get the event loop and finish: a client's
// wait for the 250 after its data (the wait a client's timeout turns into a duplicate, RFC 5321
// §4.5.3.2.6) stays short, and the waiting moves to the start of the next transaction, as
// Postfix's process limit moves it to the connection. Fewer messages in flight also hold less
// memory during a flood.
//
// Clients that hold transactions open (slowly, or on purpose) must not stop the others: a
// transaction that has waited MAX_WAIT_MS goes ahead anyway, outside the count, so places held
// for minutes cost each other transaction that wait at most, a delay SMTP clients do not notice.

/** The longest a transaction waits for a place before it goes ahead anyway. */
export const MAX_WAIT_MS = 5000

export type Admission = {
  /** Resolves when the session may begin a transaction: at once when it already holds a place. */
  admit(sessionId: string): Promise<void>
  /** The session's transaction ended (queued, refused, or the session closed): its place goes to the next. */
  release(sessionId: string): void
  /** Places held within the limit, and transactions waiting for one. */
  readonly active: number
  readonly waiting: number
}

type Waiter = { id: string; timer: NodeJS.Timeout; go: (withPlace: boolean) => void }

export function createAdmission(limit: number, maxWaitMs = MAX_WAIT_MS): Admission {
  /** Session -> whether it holds a place (false: it went ahead over the limit). */
  const holders = new Map<string, boolean>()
  let counted = 0
  const queue: Waiter[] = []

  const leave = (w: Waiter): void => {
    clearTimeout(w.timer)
    const i = queue.indexOf(w)
    if (i >= 0) queue.splice(i, 1)
  }

  return {
    admit(id) {
      if (limit <= 0 || holders.has(id)) return Promise.resolve()
      if (counted < limit && queue.length === 0) {
        holders.set(id, true)
        counted++
        return Promise.resolve()
      }
      return new Promise<void>((resolve) => {
        const w: Waiter = {
          id,
          go: (withPlace) => {
            leave(w)
            holders.set(id, withPlace)
            if (withPlace) counted++
            resolve()
          },
          timer: setTimeout(() => w.go(false), maxWaitMs),
        }
        w.timer.unref()
        queue.push(w)
      })
    },
    release(id) {
      const held = holders.get(id)
      if (held === undefined) {
        // A session that closed while waiting gives up its turn (its RCPT TO is never answered).
        const w = queue.find((x) => x.id === id)
        if (w) leave(w)
        return
      }
      holders.delete(id)
      if (!held) return
      counted--
      while (queue.length && counted < limit) queue[0].go(true)
    },
    get active() {
      return counted
    },
    get waiting() {
      return queue.length
    },
  }
}
