// The city's evacuation information as the crisis office works it: a drafter composes and previews it, a
// second person approves it, it is sent with live progress; the same person cannot approve their own; an
// approval is stopped inside its 10-second window; an approver withdraws a sent alert (time to the first
// message at the LINE stand-in is printed); a drill reaches only the drill audience.
import { assert, base, login, newPage, run, screenshot } from './lib.mjs';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const [drafter, approver, approver2, password] =
  [env('SONAE_DRAFTER'), env('SONAE_APPROVER'), env('SONAE_APPROVER_2'), env('SONAE_PASSWORD')];
const [d1, d2, expected] = [env('SONAE_DISTRICT_1'), env('SONAE_DISTRICT_2'), env('SONAE_EXPECTED')];
const sandbox = env('SANDBOX_URL');
const probe = env('SANDBOX_PROBE_USER');

async function logout(page) {
  await page.getByRole('button', { name: 'ログアウト' }).click();
  await page.waitForLoadState('load');
}

/** Composes an 避難指示 (洪水) for the two districts and returns the new alert's id. */
async function draft(page, text) {
  await page.goto(`${base}/console/alerts`);
  await page.getByRole('link', { name: '新しい避難情報を作成する' }).click();
  await page.getByLabel('警戒レベル4　避難指示').check();
  await page.getByLabel('対象の災害').selectOption({ label: '洪水' });
  await page.locator('details', { hasText: '中央区全域' }).locator('summary').click();
  await page.locator(`input[name="district"][value="${d1}"]`).check();
  await page.locator(`input[name="district"][value="${d2}"]`).check();
  await page.getByLabel(/補足/).fill(text);
  await page.getByRole('button', { name: '下書きを保存してプレビューする' }).click();
  await page.waitForLoadState('load');
  const m = new URL(page.url()).pathname.match(/^\/console\/alerts\/(\d+)$/);
  assert.ok(m, `on the alert's page: ${page.url()}`);
  return m[1];
}

async function status(page) {
  return (await page.locator('#alert-status').innerText()).trim();
}

async function waitFor(what, f, ms = 40000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

await run('alerts', async (browser, step) => {
  const page = await newPage(browser);

  step('drafter composes and previews');
  await login(page, drafter, password);
  const first = await draft(page, '豊平川の水位が上がっています。');
  assert.equal(await status(page), '下書き');
  assert.equal((await page.locator('#total-recipients').innerText()).trim(), expected);
  const phone = page.frameLocator('iframe.phone');
  const shown = await phone.locator('body').innerText();
  assert.ok(shown.includes('避難指示') && shown.includes('警戒レベル４'), shown);
  assert.ok(shown.includes('豊平川の水位が上がっています。'), shown);
  assert.match(await page.locator('pre.json').textContent(), /"type": "flex"/);
  await screenshot(page, 'console-alert-preview');

  step('drafter submits; cannot approve');
  await page.getByRole('button', { name: '承認を依頼する' }).click();
  await page.waitForLoadState('load');
  assert.equal(await status(page), '承認待ち');
  assert.equal(await page.getByRole('button', { name: '承認して送信する' }).count(), 0);
  await logout(page);

  step('an approver cannot approve their own draft, even by posting the form');
  await login(page, approver, password);
  const own = await draft(page, '自分の下書き');
  await page.getByRole('button', { name: '承認を依頼する' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.locator('main').innerText(), /自分が作成した避難情報は承認できません/);
  const csrf = await page.locator('input[name="csrf"]').first().inputValue();
  const forged = await page.request.post(`${base}/console/alerts/${own}/approve`, {
    form: { csrf, confirm: 'yes' },
  });
  assert.equal(forged.status(), 403);
  assert.match(await forged.text(), /自分が作成した避難情報は承認できません/);
  await page.goto(`${base}/console/alerts/${own}`);
  assert.equal(await status(page), '承認待ち');

  step('a second person approves; countdown; sent with progress');
  await page.goto(`${base}/console/alerts/${first}`);
  await page.getByLabel(/内容と対象地区/).check();
  await page.getByRole('button', { name: '承認して送信する' }).click();
  await page.waitForLoadState('load');
  assert.equal(await status(page), '承認済み（送信待ち）');
  assert.match(await page.locator('.countdown').innerText(), /送信まで \d+ 秒/);
  await screenshot(page, 'console-alert-countdown');
  await waitFor('sent', async () => (await status(page).catch(() => '')) === '送信済み');
  await waitFor('all delivered', async () =>
    ((await page.locator('#progress-sent').innerText().catch(() => '')) === expected));
  await logout(page);

  step('cancel inside the window');
  await login(page, approver2, password);
  await page.goto(`${base}/console/alerts/${own}`);
  await page.getByLabel(/内容と対象地区/).check();
  await page.getByRole('button', { name: '承認して送信する' }).click();
  await page.waitForLoadState('load');
  await page.getByRole('button', { name: '送信を取り消す' }).click();
  await page.waitForLoadState('load');
  assert.equal(await status(page), '取り消し済み（未送信）');
  await new Promise((r) => setTimeout(r, 12000));
  await page.reload();
  assert.equal(await status(page), '取り消し済み（未送信）');

  step('withdraw the sent alert; measure until the stand-in has it');
  await page.goto(`${base}/console/alerts`);
  const row = page.locator('tr', { hasText: '避難指示（洪水）2地区' }).filter({ has: page.locator('form.correct') }).first();
  await row.getByLabel('取消').check();
  const t0 = Date.now();
  await row.getByRole('button', { name: '訂正・取消を送信する' }).click();
  await waitFor('the withdrawal at the stand-in', async () => {
    const r = await fetch(`${sandbox}/sandbox/users/${probe}/messages`);
    const j = await r.json();
    return j.messages.some((m) => JSON.stringify(m.message).includes('【取消】'));
  }, 60000);
  console.log(`[alerts] correction latency: ${Date.now() - t0} ms`);
  await page.waitForLoadState('load');

  step('drill: only the drill audience, marked');
  await page.goto(`${base}/console/alerts`);
  await page.getByRole('button', { name: '訓練を開始する' }).click();
  await page.waitForLoadState('load');
  assert.match(await page.locator('.drill-banner').innerText(), /訓練中/);
  assert.ok(await page.locator('body.drill').count() === 1);
  const drillAlert = await draft(page, '訓練です');
  assert.match(await page.locator('main').innerText(), /訓練中のため/);
  await screenshot(page, 'console-drill');
  await page.getByRole('button', { name: '承認を依頼する' }).click();
  await page.waitForLoadState('load');
  await logout(page);
  await login(page, approver, password);
  assert.match(await page.locator('.drill-banner').innerText(), /訓練中/);
  await page.goto(`${base}/console/alerts/${drillAlert}`);
  await page.getByLabel(/内容と対象地区/).check();
  await page.getByRole('button', { name: '承認して送信する' }).click();
  await page.waitForLoadState('load');
  await waitFor('drill sent', async () => (await status(page).catch(() => '')) === '送信済み');
  await page.goto(`${base}/console/alerts`);
  await page.getByRole('button', { name: '訓練を終了する' }).click();
  await page.waitForLoadState('load');
  assert.equal(await page.locator('.drill-banner').count(), 0);
  await logout(page);
});
