import AxeBuilder from '@axe-core/playwright';
import { expect, Page, test } from '@playwright/test';
import { ADMIN, hydrated, PASSWORD, signedIn } from './helpers';

// Created by run.sh (see on_behalf.spec.ts).
const SUPPORT = { email: 'sam@e2e.test', name: 'Sam Ortiz' };
const TARGET = { email: 'tom@e2e.test', name: 'Tom Target' };
const REASON = 'Phone order T-77';

async function expectNoSeriousViolations(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(', ')}`)).toEqual([]);
}

test('an order placed on behalf is the member\'s, names who placed it, and the session is in the trail', async ({ browser }) => {
  // Sam logs in on Tom's behalf and places an order for him.
  const support = await browser.newContext();
  const page = await support.newPage();
  await signedIn(page, SUPPORT.email);
  await page.goto(`/admin/members?q=${encodeURIComponent(TARGET.email)}`);
  await hydrated(page);
  const href = await page.getByRole('table', { name: 'Members' }).getByRole('link', { name: TARGET.name, exact: true }).getAttribute('href');
  const id = href!.match(/\/admin\/members\/(\d+)/)![1];
  await page.goto(`/on-behalf/${id}`);
  await hydrated(page);
  // View only is the default: placing an order needs Act on behalf.
  await page.getByRole('radio', { name: 'Act on behalf' }).check();
  await page.getByLabel('Your password').fill(PASSWORD);
  await page.getByLabel('Reason').fill(REASON);
  await page.getByRole('button', { name: 'Login on behalf' }).click();
  await expect(page.getByRole('region', { name: 'Impersonation banner' })).toContainText(
    `You, ${SUPPORT.name}, are acting as ${TARGET.name}.`,
  );
  await page.getByRole('navigation', { name: 'My account' }).getByRole('link', { name: 'Orders' }).click();
  await expect(page.getByRole('heading', { name: 'Orders' })).toBeVisible();
  await hydrated(page);
  await page.getByLabel('Product').selectOption({ label: 'Stapler — 14.99' });
  await page.getByLabel('Quantity').fill('0');
  await page.getByRole('button', { name: 'Place order' }).click();
  await expect(page.getByText('Enter a whole number from 1 to 999.')).toBeVisible();
  await page.getByLabel('Quantity').fill('2');
  await page.getByRole('button', { name: 'Place order' }).click();
  const orders = page.getByRole('table', { name: 'Orders' });
  await expect(orders.getByRole('row', { name: /Stapler/ }).first()).toContainText('29.98');
  await expect(orders.getByRole('row', { name: /Stapler/ }).first()).toContainText(`placed by ${SUPPORT.name} on your behalf`);
  await expectNoSeriousViolations(page);
  await page.getByRole('button', { name: 'Leave impersonation' }).click();
  await expect(page.getByRole('dialog', { name: 'User information' })).toBeVisible();
  await support.close();

  // Tom sees the order as his, placed on his behalf, and the session in his access history.
  const member = await browser.newContext();
  const tom = await member.newPage();
  await signedIn(tom, TARGET.email);
  await tom.goto('/account/orders');
  await hydrated(tom);
  await expect(tom.getByRole('table', { name: 'Orders' }).getByRole('row', { name: /Stapler/ }).first()).toContainText(
    `placed by ${SUPPORT.name} on your behalf`,
  );
  await tom.getByRole('link', { name: 'Access history' }).click();
  const history = tom.getByRole('table', { name: 'Access history' });
  await expect(history.getByRole('row', { name: new RegExp(REASON) }).first()).toContainText(SUPPORT.name);
  await expectNoSeriousViolations(tom);
  await tom.getByRole('link', { name: 'Sessions' }).click();
  await expect(tom.getByRole('table', { name: 'Sessions' }).getByText('this session')).toBeVisible();
  await expectNoSeriousViolations(tom);
  await member.close();

  // An editor finds the session's timeline in the audit viewer.
  const editor = await browser.newContext();
  const ada = await editor.newPage();
  await signedIn(ada, ADMIN.email);
  await ada.goto('/admin/audit?action=order_placed');
  await hydrated(ada);
  const records = ada.getByRole('table', { name: 'Audit records' });
  await expect(records.getByRole('row').nth(1)).toContainText(SUPPORT.name);
  await expectNoSeriousViolations(ada);
  await records.getByRole('row').nth(1).getByRole('link', { name: /^Session \d+$/ }).click();
  await expect(ada.getByRole('heading', { name: /^Session on behalf \d+$/ })).toBeVisible();
  await expect(ada.getByRole('definition').filter({ hasText: REASON })).toBeVisible();
  // The session's records in order, the pages viewed in it (the view trail) left aside.
  const timeline = ada.getByRole('table', { name: 'Timeline' });
  const steps = timeline.getByRole('row').filter({ hasNotText: 'on_behalf_viewed' });
  await expect(steps.nth(1)).toContainText('on_behalf_start');
  await expect(steps.nth(2)).toContainText('order_placed');
  await expect(steps.nth(3)).toContainText('on_behalf_end');
  await expect(timeline.getByRole('row').filter({ hasText: 'on_behalf_viewed' }).first()).toBeVisible();
  await expectNoSeriousViolations(ada);
  // The CSV export of the filtered records downloads.
  await ada.goto('/admin/audit?action=order_placed');
  await hydrated(ada);
  const [download] = await Promise.all([ada.waitForEvent('download'), ada.getByRole('link', { name: 'Export CSV' }).click()]);
  expect(download.suggestedFilename()).toMatch(/^behalf-audit-.*\.csv$/);
  await editor.close();
});
