import { DETECT_RULES } from '../../src/protect/detect.js';

/**
 * One planted value per detector kind (published test values, never live ones), with the context a
 * rule needs before it (`password=`, `Bearer `) and after it. The value is what must never show,
 * whole or in part; the context may.
 */
export interface Planted {
  before: string;
  value: string;
  after: string;
}

const plain = (value: string): Planted => ({ before: '', value, after: '' });

export const PLANTED: Record<string, Planted> = {
  'private-key': plain(
    '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAcanaryPrivateKeyMaterial\n-----END RSA PRIVATE KEY-----',
  ),
  'aws-access-key': plain('AKIAIOSFODNN7EXAMPLE'),
  'aws-secret-key': {
    before: 'aws_secret_access_key = ',
    value: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    after: '',
  },
  'github-token': plain('ghp_1234567890abcdefghijklmnopqrstuvwxyZ'),
  'gitlab-token': plain('glpat-AbCdEfGhIjKlMnOpQrSt'),
  'slack-token': plain('xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'),
  'slack-webhook': plain('https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX'),
  'stripe-key': plain('sk_live_51HzTestPlantedValue00000'),
  'stripe-webhook-secret': plain('whsec_AbCdEfGhIjKlMnOpQrStUvWxYz012345'),
  'google-api-key': plain('AIzaSyA1234567890abcdefghijklmnopqrstuv'),
  'google-oauth-token': plain('ya29.a0AfH6SMBxPlantedGoogleToken0123456789'),
  'openai-key': plain('sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345'),
  'anthropic-key': plain('sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz012345'),
  'npm-token': plain('npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'),
  'mcp-warden-key': plain('mwk_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg'),
  jwt: plain('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'),
  authorization: { before: 'Authorization: Bearer ', value: 'opaque.DEF-123_456~xyzQ', after: '' },
  'url-password': { before: 'postgres://app:', value: 'Sup3rS3cretDbPw', after: '@db.internal:5432/app' },
  password: { before: 'password=', value: 'Hunter2!xyzzy', after: ';' },
  'generic-secret': {
    before: 'The staging signing secret is ',
    value: 'q8Zp3LrT0vX9wYb2Kc7N',
    after: ', rotate it.',
  },
  'card-number': plain('4111 1111 1111 1111'),
  iban: plain('DE89370400440532013000'),
  'us-ssn': plain('078-05-1120'),
  email: plain('jane.doe@example.org'),
  phone: plain('+1 415 555 0167'),
};

/** Every kind a detector has: a new rule without a planted value here fails the tests that use this. */
export const DETECTOR_KINDS = [...new Set(DETECT_RULES.map((r) => r.kind))].sort();
