import { HIDING_CLASSES, type Tool } from '../model/catalog.js';

/**
 * The secure default with no configuration: only safe reads are exposed. Every hidden tool gets
 * one reason per class that hides it, taken from the rule that assigned the class.
 */
export function secureDefaultExposure(tool: Pick<Tool, 'risk'>): { exposed: boolean; reasons: string[] } {
  const hiding = tool.risk.classes.filter((c) => HIDING_CLASSES.includes(c) && !onlySecretFields(tool, c));
  if (hiding.length === 0) {
    const reasons = ['read-only operation'];
    if (tool.risk.classes.includes('credential'))
      reasons.push('its secret response fields are dropped before the agent sees them');
    if (tool.risk.unbounded)
      reasons.push('unbounded list: the gateway clamps its page size and caps the response');
    return { exposed: true, reasons };
  }
  const reasons = hiding.map((c) => {
    const why = tool.risk.findings.filter((f) => f.class === c).map((f) => f.reason);
    return `${c}: ${why.join('; ')}`;
  });
  return { exposed: false, reasons };
}

/** "credential" only because the response carries secret fields, which masking drops by default. */
function onlySecretFields(tool: Pick<Tool, 'risk'>, c: string): boolean {
  if (c !== 'credential') return false;
  const found = tool.risk.findings.filter((f) => f.class === 'credential');
  return found.length > 0 && found.every((f) => f.rule === 'credential-response');
}
