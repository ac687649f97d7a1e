/** Who is calling: the one shape authentication produces and the pipeline and the audit receive. */
export interface Principal {
  id: string;
  scopes: readonly string[];
}
