-- mcp-warden per-user upstream connections (the token vault when the gateway is shared).
-- The tokens are sealed (AES-256-GCM, `kid` names the key; additional data: principal NUL upstream);
-- the other columns describe the connection and stay readable for listing and revoking.
CREATE TABLE IF NOT EXISTS mcp_warden_connections (
  principal    text        NOT NULL,
  upstream     text        NOT NULL,
  issuer       text        NOT NULL,
  scopes       text[]      NOT NULL,
  expires_at   timestamptz,
  last_used_at timestamptz,
  created_at   timestamptz NOT NULL,
  kid          text        NOT NULL,
  iv           text        NOT NULL,
  tag          text        NOT NULL,
  data         text        NOT NULL,
  PRIMARY KEY (principal, upstream)
);
CREATE INDEX IF NOT EXISTS mcp_warden_connections_upstream ON mcp_warden_connections (upstream);
