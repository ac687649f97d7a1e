/**
 * The canary test's planted values (test/e2e/canary.test.ts): typed ones (found only by the schema)
 * and free-text ones (found only by value). None may appear in any result, audit line, byte the
 * gateway writes to stdout or stderr, or span attribute (test/e2e/tracing.test.ts).
 */
export const TYPED = {
  password: 'correct-horse-battery-staple',
  apiKey: 'k3y-0f-the-k1ngd0m-xyz',
  ownerName: 'Jane Quincy Public',
  ownerEmail: 'jane.public@corp.example',
  ownerPhone: '+1 202 555 0147',
  ssn: '219-09-9999',
  dob: '1984-06-30',
  card: '5555 5555 5555 4444',
  cvc: '737',
  iban: 'GB82WEST12345698765432',
  contactEmail: 'bob.contact@corp.example',
  sessionSecret: 'sess-7f9a2c4e1b3d5f6a8c0e',
  // Near-miss names: plurals, lists, a secrets object, a singular credential (issue 17).
  listedPassword: 'pw-in-a-list-0001',
  listedApiKey: 'key-in-a-list-0002',
  databaseSecret: 'db-secret-in-object-0003',
  credential: 'singular-credential-0004',
  privateKeyPem: 'pem-under-compound-name-0005',
};
export const FREE = {
  aws: 'AKIAIOSFODNN7EXAMPLE',
  github: 'ghp_1234567890abcdefghijklmnopqrstuvwxyZ',
  slack: 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
  stripe: 'sk_live_51HzCanaryPlantedValue00001',
  jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlLW9mLXRoZS1jYW5hcnktdG9rZW4',
  dbPassword: 'Sup3rS3cretDbPw',
  bearer: 'opaque-bearer-value-1234567890',
  pem: 'MIIEowIBAAKCAQEAcanaryPrivateKeyMaterial',
  card: '4012 8888 8888 1881',
  ssn: '078-05-1120',
  email: 'leaky.person@mail.example',
  openai: 'sk-proj-CanaryOpenAiKeyValue0123456789',
  // No known format: found beside its key id, and after a secret keyword (issue 17).
  awsSecret: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYCANARYKEY0',
  generic: 'q8Zp3LrT0vX9wYb2Kc7NcAnArY',
};
export const ARG_EMAIL = 'searcher.person@query.example';
export const SHOP_PLANTED = ['sk_live_51DemoPlantedSecretKey000', 'tok_demo_', 'alan.hamilton@example.org'];
export const ALL = [...Object.values(TYPED), ...Object.values(FREE), ARG_EMAIL, ...SHOP_PLANTED];
