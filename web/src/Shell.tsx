// The frame around every signed-in page: header with the brand picker and the person's menu,
// a navigation bar that folds behind a burger on a phone.
import { AppShell, Burger, Group, Menu, NavLink, Select, Text, UnstyledButton } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import type { ReactNode } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";
import type { Page } from "./App";
import { useSession } from "./session";

export function Shell({ pages, children }: { pages: Page[]; children: ReactNode }) {
  const [opened, { toggle, close }] = useDisclosure();
  const { me, tenants, tenant, setTenant, signOut } = useSession();
  const location = useLocation();
  const navigate = useNavigate();
  const role = me?.platform_admin ? "platform admin" : tenant ? me?.roles[tenant] ?? "" : "";
  const partner = tenant ? me?.partners[tenant] : undefined;

  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 210, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Menu" />
            <Text fw={700} size="lg">
              leadstream
            </Text>
          </Group>
          <Group gap="sm" wrap="nowrap">
            {tenants.length > 1 ? (
              <Select
                aria-label="Brand"
                data-testid="tenant-picker"
                size="xs"
                w={150}
                data={tenants}
                value={tenant}
                allowDeselect={false}
                onChange={(t) => t && setTenant(t)}
              />
            ) : (
              <Text size="sm" data-testid="tenant-name">
                {tenant}
              </Text>
            )}
            <Menu position="bottom-end">
              <Menu.Target>
                <UnstyledButton data-testid="person-menu" aria-label="Your account">
                  <Text size="sm" fw={500} truncate maw={180}>
                    {me?.name} · {role}
                    {partner ? ` (${partner})` : ""}
                  </Text>
                </UnstyledButton>
              </Menu.Target>
              <Menu.Dropdown>
                <Menu.Label>{me?.id}</Menu.Label>
                <Menu.Item onClick={() => navigate("/password")}>Change password</Menu.Item>
                <Menu.Item color="red" data-testid="sign-out" onClick={() => signOut().then(() => navigate("/sign-in"))}>
                  Sign out
                </Menu.Item>
              </Menu.Dropdown>
            </Menu>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Pages">
        {pages.map((p) => (
          <NavLink
            key={p.path}
            component={Link}
            to={p.path}
            label={p.label}
            active={location.pathname.startsWith(p.path)}
            onClick={close}
            data-testid={`nav-${p.path.slice(1)}`}
          />
        ))}
      </AppShell.Navbar>
      <AppShell.Main>{children}</AppShell.Main>
    </AppShell>
  );
}
