import { expect, test } from '@playwright/test';
import { ADMIN, hydrated, MEMBER, signedIn } from './helpers';

test('the blade opens from a group page too, and closes back to the group', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  await page.getByRole('banner').getByRole('link', { name: 'Groups' }).click();
  await expect(page).toHaveURL(/\/admin\/groups$/);
  const groups = page.getByRole('table', { name: 'Groups' });
  await expect(groups.getByRole('link', { name: 'Acme Retail' })).toBeVisible();
  await hydrated(page);
  await groups.getByRole('link', { name: 'Acme Retail' }).click();
  await expect(page.getByRole('heading', { name: 'Acme Retail', level: 1 })).toBeVisible();
  const members = page.getByRole('table', { name: 'Group members' });
  const first = members.locator('a.member-link').first();
  const name = await first.innerText();
  await first.click();
  await expect(page).toHaveURL(/\/admin\/groups\/\d+\/members\/\d+$/);
  const blade = page.getByRole('dialog', { name: 'User information' });
  await expect(blade.getByText(name).first()).toBeVisible();
  await expect(blade.getByRole('link', { name: 'Acme Retail' })).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(blade).toHaveCount(0);
  await expect(page).toHaveURL(/\/admin\/groups\/\d+$/);
  await expect(first).toBeFocused();
});

test('an admin creates a group, adds and removes a member, renames it and deletes it', async ({ page }) => {
  await signedIn(page, ADMIN.email);
  await page.goto('/admin/groups');
  await hydrated(page);
  const groups = page.getByRole('table', { name: 'Groups' });

  // A duplicate name is refused next to the field.
  await page.getByLabel('New group name').fill('acme retail');
  await page.getByRole('button', { name: 'Create group' }).click();
  await expect(page.locator('#new-group-name-error')).toHaveText(/already exists/);

  await page.getByLabel('New group name').fill('E2E Testers');
  await page.getByRole('button', { name: 'Create group' }).click();
  await expect(groups.getByRole('link', { name: 'E2E Testers' })).toBeVisible();
  await groups.getByRole('link', { name: 'E2E Testers' }).click();
  await expect(page.getByRole('heading', { name: 'E2E Testers', level: 1 })).toBeVisible();
  await hydrated(page);
  await expect(page.getByText('Nobody is in this group yet.')).toBeVisible();

  await page.getByLabel('Member ID').fill('2');
  await page.getByRole('button', { name: 'Add member' }).click();
  const members = page.getByRole('table', { name: 'Group members' });
  await expect(members.getByRole('link', { name: MEMBER.name })).toBeVisible();
  await page.getByLabel('Member ID').fill('2');
  await page.getByRole('button', { name: 'Add member' }).click();
  await expect(page.locator('#add-member-id-error')).toHaveText(/already in E2E Testers/);
  await members.getByRole('button', { name: `Remove ${MEMBER.name} from the group` }).click();
  await expect(page.getByText('Nobody is in this group yet.')).toBeVisible();

  await page.getByLabel('Group name').fill('E2E Testers Renamed');
  await page.getByRole('button', { name: 'Rename' }).click();
  await expect(page.getByRole('heading', { name: 'E2E Testers Renamed', level: 1 })).toBeVisible();

  await page.getByRole('button', { name: 'Delete group' }).click();
  await page.getByRole('button', { name: 'Yes, delete the group' }).click();
  await expect(page).toHaveURL(/\/admin\/groups$/);
  await expect(groups.getByRole('link', { name: 'E2E Testers Renamed' })).toHaveCount(0);
});
