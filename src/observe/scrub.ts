/**
 * Replaces known secret values (upstream credentials) wherever they appear in a string. Used on every
 * log line, audit record and text handed to an agent, so a credential echoed by an upstream or
 * carried in an error message cannot leak.
 */
export class Scrubber {
  private readonly secrets: string[];

  constructor(secrets: readonly string[]) {
    // Longest first, so a secret containing another is replaced whole.
    this.secrets = [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.secrets.length === 0;
  }

  scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join('[REDACTED:credential]');
    return out;
  }

  /** Whether any secret occurs in the text (cheaper than scrubbing when nothing does). */
  finds(text: string): boolean {
    for (const s of this.secrets) if (text.includes(s)) return true;
    return false;
  }
}
