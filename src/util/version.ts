/**
 * apiary's version, said in one place: `apiary --version`, the console, the
 * controller's lock record, the aggregate endpoint's serverInfo and the
 * clientInfo apiary gives each server all read it. It is package.json's
 * version (a test holds the two together; bump both in one commit).
 */
export const APIARY_VERSION = '0.1.0';
