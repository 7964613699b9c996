// The dashboard as the crisis office sees it on a 1280×900 screen with a real city's data (札幌市: 5,899 districts,
// 349 shelters of which the city opened 40, the demo's warnings over 石狩・空知・後志, deliveries in progress): the page stays short, the mode,
// the counts, the warnings and the deliveries are on the first screen, and the shelter list is folded until
// opened. Env: SONAE_OPERATOR, SONAE_PASSWORD, SONAE_MAX_HEIGHT (px), SONAE_OPEN_SHELTERS (count expected).
import { assert, login, newPage, run, screenshot } from './lib.mjs';

const user = process.env.SONAE_OPERATOR;
const password = process.env.SONAE_PASSWORD;
const maxHeight = Number(process.env.SONAE_MAX_HEIGHT);
const openShelters = Number(process.env.SONAE_OPEN_SHELTERS);
const viewport = { width: 1280, height: 900 };

await run('dashboard', async (browser, step) => {
  const page = await newPage(browser, viewport);

  step('login');
  await login(page, user, password);
  assert.equal(new URL(page.url()).pathname, '/console/');

  step('page height');
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  console.log(`[dashboard] full page height ${height} px at ${viewport.width}x${viewport.height} (bound ${maxHeight} px)`);
  assert.ok(height <= maxHeight, `the dashboard is ${height} px tall, more than ${maxHeight}`);
  await screenshot(page, 'console-dashboard-sapporo');

  step('first screen');
  // Fully on the first screen: the mode banner and the counts; the warnings and deliveries start on it.
  for (const sel of ['#mode-banner', '#summary']) {
    const box = await page.locator(sel).boundingBox();
    assert.ok(box && box.y + box.height <= viewport.height, `${sel} is not on the first screen: ${JSON.stringify(box)}`);
  }
  for (const sel of ['#warnings h2', '#deliveries h2', '#warnings table tbody tr', '#deliveries table tbody tr']) {
    const box = await page.locator(sel).first().boundingBox();
    assert.ok(box && box.y + box.height <= viewport.height, `${sel} is not on the first screen: ${JSON.stringify(box)}`);
  }
  const counts = await page.locator('#summary').innerText();
  assert.match(counts, /警報以上/);
  assert.match(counts, /配信中\s*2\s*件/, counts);
  assert.match(counts, new RegExp(`開設 ${openShelters}`), counts);
  assert.match(counts, /助けが必要\s*0\s*件/, counts);
  // No placeholder where a figure should be.
  assert.ok(!/－|undefined|NaN/.test(counts), counts);

  step('folded lists open on click');
  const list = page.locator('#open-shelters');
  assert.equal(await list.evaluate((d) => d.open), false, 'the shelter list starts folded');
  assert.equal(await page.locator('#open-shelters li').first().isVisible(), false);
  await page.getByText('開設中・満員の避難所の一覧').click();
  assert.ok(await page.locator('#open-shelters li').first().isVisible());
  assert.equal(await page.locator('#open-shelters li').count(), openShelters);
  const opened = await page.evaluate(() => document.documentElement.scrollHeight);
  console.log(`[dashboard] with the shelter list opened: ${opened} px`);
  assert.ok(opened > height, 'opening the list shows it');
  if (await page.locator('#advisories').count()) {
    await page.locator('#advisories summary').click();
    assert.ok(await page.locator('#advisories tbody tr').first().isVisible());
  }
});
