// QUOTA_WARNING: a copy that takes a mailbox past one of the thresholds (80 % and 95 % of its quota
// by default, as docker-mailserver's Dovecot quota_warning) queues a short notice to its owner,
// from the null sender (nothing answers it, nothing bounces back), Auto-Submitted (RFC 3834 §5: no
// vacation reply), in DSN_LANGUAGE. It reaches the mailbox even when the copy that crossed the
// threshold filled it (local.ts lets it past the quota).
import MailComposer from 'nodemailer/lib/mail-composer/index.js'
import type { Config } from '@facteur/config'
import type { Logger } from '@facteur/logging'
import type { Spool } from '@facteur/spool'

/** The envelope's source: local delivery lets it into a full mailbox. */
export const QUOTA_WARNING_SOURCE = 'quota-warning'

export type QuotaWarning = { address: string; percent: number; bytes: number; quota: number }

/** 9.5 KiB, 812.3 MiB, 1.8 GiB. */
function size(bytes: number): string {
  const [unit, scale] = bytes >= 1024 ** 3 ? ['GiB', 1024 ** 3] : bytes >= 1024 ** 2 ? ['MiB', 1024 ** 2] : ['KiB', 1024]
  return `${Number((bytes / scale).toFixed(1))} ${unit}`
}

const en = {
  subject: (w: QuotaWarning) => `Your mailbox is ${w.percent}% full`,
  // Lines under 76 characters: plain 7bit text, no quoted-printable.
  body: (w: QuotaWarning) =>
    [
      `Your mailbox ${w.address}`,
      `holds ${size(w.bytes)} of its ${size(w.quota)} quota (${w.percent}% or more).`,
      '',
      'Once it is full, new mail for you waits on the server, and goes back',
      'to its senders if you have not made room in time. Please delete or',
      'archive the messages you no longer need.',
    ].join('\n'),
}

/** French first, then the English text (as the French DSN). */
const fr = {
  subject: (w: QuotaWarning) => `Votre boîte aux lettres est pleine à ${w.percent} %`,
  body: (w: QuotaWarning) =>
    [
      `Votre boîte aux lettres ${w.address}`,
      `contient ${size(w.bytes)} sur les ${size(w.quota)} permis (${w.percent} % ou plus).`,
      '',
      'Une fois pleine, le courrier qui vous est adressé attend sur le serveur,',
      "puis retourne à ses expéditeurs si vous n'avez pas fait de place à temps.",
      "Supprimez ou archivez les messages dont vous n'avez plus besoin.",
      '',
      '---',
      '',
      en.body(w),
    ].join('\n'),
}

const TEXTS = { en, fr }

export function quotaWarnings(deps: { config: Config; logger: Logger; spool: Spool }): (w: QuotaWarning) => void {
  const { config, logger, spool } = deps
  return (w) => {
    const texts = TEXTS[config.dsnLanguage]
    const composed = new MailComposer({
      from: { name: 'Mail Delivery System', address: `MAILER-DAEMON@${config.hostname}` },
      to: w.address,
      subject: texts.subject(w),
      text: texts.body(w),
      headers: { 'Auto-Submitted': 'auto-generated' },
    })
      .compile()
      .build()
    void composed
      .then((message) =>
        spool.enqueue(message, {
          sender: '',
          recipients: [{ address: w.address, original: w.address, status: 'pending', attempts: 0, notify: ['NEVER'] }],
          receivedAt: Date.now(),
          nextAttempt: 0,
          client: { ip: '127.0.0.1', helo: config.hostname, tls: false },
          source: QUOTA_WARNING_SOURCE,
        }),
      )
      .then(
        (queued) => logger.info('notice queued', { notice: queued.id, action: 'quota-warning', to: w.address, percent: w.percent }),
        (err: unknown) => logger.warn('quota warning not queued', { to: w.address, err: String(err) }),
      )
  }
}
