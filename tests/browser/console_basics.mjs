// The console as staff use it: log in by typing, read the dashboard, hold and release disaster mode,
// log out; a wrong password is refused with a message. Accounts: SONAE_APPROVER / SONAE_PASSWORD.
import { assert, base, login, newPage, run, screenshot } from './lib.mjs';

const user = process.env.SONAE_APPROVER;
const password = process.env.SONAE_PASSWORD;

await run('console_basics', async (browser, step) => {
  const page = await newPage(browser);

  step('wrong password');
  await login(page, user, 'not-the-password');
  assert.match(await page.getByRole('alert').innerText(), /ユーザー名またはパスワードが正しくありません/);
  // The name typed stays in the field; the password does not.
  assert.equal(await page.getByLabel('ユーザー名').inputValue(), user);
  assert.equal(await page.getByLabel('パスワード').inputValue(), '');

  step('login');
  await login(page, user, password);
  assert.equal(new URL(page.url()).pathname, '/console/');
  const header = await page.locator('header').innerText();
  assert.ok(header.includes(user), `header names the user: ${header}`);
  await screenshot(page, 'console-dashboard');
  assert.ok((await page.locator('#mode-banner').innerText()).includes('平常時'));

  step('hold disaster mode');
  const hold = page.locator('form.confirm.danger');
  await hold.getByLabel('理由').fill('ブラウザ試験: 台風接近のため');
  await hold.getByRole('checkbox').check();
  await hold.getByRole('button', { name: '災害モードを手動で保持する' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.getByRole('status').first().innerText(), /災害モードを手動で保持しました/);
  const banner = await page.locator('#mode-banner').innerText();
  assert.ok(banner.includes('災害モード') && banner.includes('手動保持中'), banner);

  step('release');
  const release = page.locator('form.confirm').filter({ hasText: '手動保持を解除する' });
  await release.getByLabel('理由').fill('ブラウザ試験: 通過');
  await release.getByRole('button', { name: '手動保持を解除する' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.getByRole('status').first().innerText(), /手動保持を解除しました/);

  step('audit page lists both actions');
  await page.getByRole('link', { name: '監査ログ' }).click();
  const audit = await page.locator('main').innerText();
  assert.ok(audit.includes('mode.hold') && audit.includes('mode.release'), audit.slice(0, 400));

  step('logout');
  await page.getByRole('button', { name: 'ログアウト' }).click();
  await page.waitForLoadState('load');
  assert.equal(new URL(page.url()).pathname, '/console/login');
  assert.match(await page.getByRole('status').innerText(), /ログアウトしました/);
  // The session is gone on the server too: the dashboard sends us back to the login page.
  await page.goto(`${base}/console/`);
  assert.equal(new URL(page.url()).pathname, '/console/login');
});
