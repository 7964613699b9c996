// Shelters as staff open them: log in by typing, open every 洪水 shelter of one ward with the bulk form, read
// the result in the table and on the residents' shelter map, find the one audit entry, log out.
// Account: SONAE_OPERATOR / SONAE_PASSWORD; SONAE_WARD (e.g. 中央区), SONAE_DISTRICT (a district of it),
// SONAE_EXPECT (how many 洪水 shelters the ward has).
import { assert, base, login, newPage, run, screenshot } from './lib.mjs';

const user = process.env.SONAE_OPERATOR;
const password = process.env.SONAE_PASSWORD;
const ward = process.env.SONAE_WARD;
const district = process.env.SONAE_DISTRICT;
const expected = Number(process.env.SONAE_EXPECT);

await run('shelters_bulk', async (browser, step) => {
  const page = await newPage(browser);

  step('login');
  await login(page, user, password);
  assert.equal(new URL(page.url()).pathname, '/console/');

  step('the shelter map says nothing is open yet');
  const before = await (await page.request.get(`${base}/api/shelters?district=${encodeURIComponent(district)}&hazard=flood`)).json();
  assert.ok(before.shelters.length > 0 && before.shelters.every((s) => !s.opened), JSON.stringify(before.shelters));

  step('bulk open');
  await page.getByRole('link', { name: '避難所', exact: true }).click();
  await page.waitForLoadState('load');
  const form = page.locator('form.bulk-form');
  await form.getByLabel('災害の種類').selectOption({ label: '洪水' });
  await form.getByLabel('範囲').selectOption({ label: ward });
  await form.getByLabel('操作').selectOption({ label: '開設' });
  await form.getByRole('button', { name: 'まとめて変更' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.getByRole('status').first().innerText(), /まとめて変更しました/);
  await screenshot(page, 'console-shelters-bulk');

  step('the table shows them open');
  const open = await page.locator('tbody tr.st-open').count();
  assert.equal(open, expected, `open rows: ${open}, expected ${expected}`);
  const wardRows = page.locator('tbody tr.st-open td:first-child');
  for (const t of await wardRows.allInnerTexts()) assert.ok(t.startsWith(ward), t);

  step('the residents see 開設中 first');
  const after = await (await page.request.get(`${base}/api/shelters?district=${encodeURIComponent(district)}&hazard=flood`)).json();
  assert.ok(after.shelters[0].opened, JSON.stringify(after.shelters.slice(0, 3)));
  await page.goto(`${base}/shelters?district=${encodeURIComponent(district)}&hazard=flood`);
  await page.locator('#list li').first().waitFor();
  assert.match(await page.locator('#list li').first().innerText(), /開設中/);

  step('one audit entry');
  await page.goto(`${base}/console/audit`);
  const audit = await page.locator('main').innerText();
  assert.equal((audit.match(/shelter\.status\.bulk/g) || []).length, 1, audit.slice(0, 600));

  step('logout');
  await page.goto(`${base}/console/`);
  await page.getByRole('button', { name: 'ログアウト' }).click();
  await page.waitForLoadState('load');
  assert.equal(new URL(page.url()).pathname, '/console/login');
});
