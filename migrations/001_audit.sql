-- mcp-warden audit records, mirrored from each instance's hash-chained JSONL file.
-- `line` is the record exactly as written (and hashed), so `audit verify --db` can check the chain.
CREATE TABLE IF NOT EXISTS mcp_warden_audit (
  instance   text        NOT NULL,
  seq        bigint      NOT NULL,
  time       timestamptz NOT NULL,
  kind       text        NOT NULL,
  tool       text,
  principal  text,
  decision   text,
  code       text,
  line       text        NOT NULL,
  PRIMARY KEY (instance, seq)
);
CREATE INDEX IF NOT EXISTS mcp_warden_audit_time ON mcp_warden_audit (time);
CREATE INDEX IF NOT EXISTS mcp_warden_audit_tool_time ON mcp_warden_audit (tool, time);
CREATE INDEX IF NOT EXISTS mcp_warden_audit_principal_time ON mcp_warden_audit (principal, time);
