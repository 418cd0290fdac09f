// Drives the broker's web page in Debian's headless chromium (playwright-core, no downloaded
// browser): opens http://REST/?ws=...&token=...&subscribe=..., waits until the page is subscribed,
// prints "subscribed", then waits for a table row containing `--expect` and saves a screenshot.
//
//   node page_test.mjs --page http://127.0.0.1:PORT/ --ws ws://127.0.0.1:PORT/mqtt --token KEY
//        --subscribe '#' --expect 21.5 --screenshot out.png
// Exit codes: 0 found, 1 not found / page error, 77 chromium missing (the test is skipped).
import fs from 'node:fs';
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(executablePath)) { console.log('chromium not installed'); process.exit(77); }

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let code = 1;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.error('page:', m.text()));
  const url = new URL(args.page);
  url.searchParams.set('ws', args.ws);
  url.searchParams.set('token', args.token);
  url.searchParams.set('subscribe', args.subscribe ?? '#');
  await page.goto(url.toString());
  await page.waitForSelector('#status.subscribed', { timeout: 10000 });
  console.log('subscribed');
  await page.waitForSelector(`#messages tr.message:has-text("${args.expect}")`, { timeout: 10000 });
  const rows = await page.$$eval('#messages tr.message', (trs) => trs.map((tr) => tr.innerText));
  console.log(JSON.stringify({ rows }));
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
  code = 0;
} catch (e) {
  console.log('error: ' + e.message);
} finally {
  await browser.close();
}
process.exit(code);
