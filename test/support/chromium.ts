// Debian's Chromium for browser tests, driven by playwright-core, started the way this machine allows:
// headless, no sandbox (root), and no background networking (the network is closed; Chromium's own
// connections would only be refused).
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
