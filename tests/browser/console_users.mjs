// Accounts from the console (admin only): add an account with a one-time password, which the new user must
// replace at first login; reset a password; disable an account. Accounts: SONAE_ADMIN / SONAE_PASSWORD.
import { assert, base, login, newPage, run, screenshot } from './lib.mjs';

const admin = process.env.SONAE_ADMIN;
const password = process.env.SONAE_PASSWORD;

async function logout(page) {
  await page.getByRole('button', { name: 'ログアウト' }).click();
  await page.waitForLoadState('load');
}

await run('console_users', async (browser, step) => {
  const page = await newPage(browser);

  step('admin adds a drafter');
  await login(page, admin, password);
  await page.getByRole('link', { name: '職員' }).click();
  await page.getByLabel('ユーザー名').fill('sato.k');
  await page.getByLabel('権限').selectOption({ label: '起案者' });
  await page.getByRole('button', { name: '追加して初期パスワードを発行する' }).click();
  await page.waitForLoadState('load');
  const oneTime = (await page.locator('#one-time-password').innerText()).trim();
  assert.equal(oneTime.length, 16, `one-time password: ${oneTime}`);
  await screenshot(page, 'console-one-time-password');
  await page.getByRole('link', { name: '職員アカウントの一覧へ戻る' }).click();
  const row = page.locator('tr', { hasText: 'sato.k' });
  assert.match(await row.innerText(), /起案者/);
  assert.match(await row.innerText(), /初期パスワード（未変更）/);
  await logout(page);

  step('the new user must choose a password first');
  await login(page, 'sato.k', oneTime);
  assert.equal(new URL(page.url()).pathname, '/console/password');
  // Any other page leads back to the password form.
  await page.goto(`${base}/console/shelters`);
  assert.equal(new URL(page.url()).pathname, '/console/password');
  await page.getByLabel('今のパスワード').fill(oneTime);
  await page.getByLabel('新しいパスワード（12文字以上）').fill('short');
  await page.getByLabel('新しいパスワード（確認）').fill('short');
  // The browser's own minlength check would stop the form; the server's check is what is tested here.
  await page.locator('form[action="/console/password"]').evaluate((f) => f.noValidate = true);
  await page.getByRole('button', { name: '変更する' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.getByRole('alert').innerText(), /12文字以上/);
  await page.getByLabel('今のパスワード').fill(oneTime);
  await page.getByLabel('新しいパスワード（12文字以上）').fill('mogami-gawa-2026');
  await page.getByLabel('新しいパスワード（確認）').fill('mogami-gawa-2026');
  await page.getByRole('button', { name: '変更する' }).click();
  await page.waitForLoadState('load');
  assert.equal(new URL(page.url()).pathname, '/console/');
  assert.match(await page.getByRole('status').first().innerText(), /パスワードを変更しました/);
  const header = await page.locator('header').innerText();
  assert.ok(header.includes('sato.k（起案者）'), header);
  assert.ok(!header.includes('職員'), 'a drafter has no accounts page in the menu');
  // A drafter cannot open the accounts page.
  const res = await page.goto(`${base}/console/users`);
  assert.equal(res.status(), 403);
  await page.goto(`${base}/console/`);
  await logout(page);

  step('admin resets and then disables the account');
  await login(page, admin, password);
  await page.goto(`${base}/console/users`);
  await page.locator('tr', { hasText: 'sato.k' }).getByRole('button', { name: 'パスワードを再設定' }).click();
  await page.waitForLoadState('load');
  const second = (await page.locator('#one-time-password').innerText()).trim();
  assert.notEqual(second, oneTime);
  await page.goto(`${base}/console/users`);
  await page.locator('tr', { hasText: 'sato.k' }).getByRole('button', { name: '無効にする' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.getByRole('status').first().innerText(), /無効にしました/);
  assert.match(await page.locator('tr', { hasText: 'sato.k' }).innerText(), /無効/);
  // The admin's own row has no disable button.
  assert.equal(await page.locator('tr', { hasText: admin }).getByRole('button', { name: '無効にする' }).count(), 0);
  await logout(page);

  step('a disabled account cannot log in');
  await login(page, 'sato.k', 'mogami-gawa-2026');
  assert.match(await page.getByRole('alert').innerText(), /ユーザー名またはパスワードが正しくありません/);
});
