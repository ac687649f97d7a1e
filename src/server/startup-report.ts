import type { Controller } from '../control/controller.js';
import type { Logger } from '../observe/log.js';
import type { UpstreamTarget } from '../upstream/base-url.js';

/** What an operator reads first: what is served, from where, and what is hidden for want of a credential. */
export function reportStartup(o: {
  /** Every spec served (several in an API set), their upstreams and their warnings. */
  api: { specs: string[]; targets: UpstreamTarget[]; warnings: string[] };
  controller: Controller;
  policyFile: string | undefined;
  auditFile: string;
  logger: Logger;
}): void {
  const { api, controller, logger } = o;
  const total = controller.currentCatalog().tools.length;
  const exposed = controller.view().entries.filter((e) => e.exposed).length;
  const upstreams = [...new Set(api.targets.map((t) => t.origin + t.basePath))];
  logger.info(
    {
      spec: api.specs.length === 1 ? api.specs[0] : api.specs,
      policy: o.policyFile ?? '(none: secure defaults)',
      environment: controller.environment(),
      tools: total,
      exposed,
      hidden: total - exposed,
      upstream: upstreams.slice(0, 5),
      audit: o.auditFile,
    },
    `serving ${exposed} of ${total} tools (mode ${controller.policy().mode})`,
  );
  // A tool the policy would serve but whose credential is missing: hidden, and said so now.
  const missing = new Map<string, string[]>();
  for (const [tool, why] of controller.credentials().missing)
    missing.set(why, [...(missing.get(why) ?? []), tool]);
  for (const [why, tools] of missing)
    logger.warn(
      { tools: tools.slice(0, 20), count: tools.length },
      `hidden for want of an upstream credential: ${why}`,
    );
  for (const w of api.warnings.slice(0, 20)) logger.warn({ spec: true }, w);
}
