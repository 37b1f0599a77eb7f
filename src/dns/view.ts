import type { Cidr } from '../model/address.js';

/** The addresses a name answers on one network; an empty list is a known name with no records. */
export interface NameRecords {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

export interface SrvTarget {
  readonly target: string;
  readonly port: number;
  readonly address: string;
}

/** A reverse record: answered only to clients that see `network`, as forward names are. */
export interface PtrRecord {
  readonly target: string;
  readonly network: string;
}

/** Looks a name up; the index answers some names (tasks) from its indexes at query time. */
export interface NameLookup {
  get(name: string): NameRecords | undefined;
}

export interface SrvLookup {
  get(name: string): readonly SrvTarget[] | undefined;
  has(name: string): boolean;
}

/** Every name one network answers. */
export interface NetworkZone {
  readonly id: string;
  readonly name: string;
  readonly internal: boolean;
  readonly subnet: Cidr;
  readonly names: NameLookup;
  readonly srv: SrvLookup;
}

/** What the DNS answers from: updated from each snapshot change, read by every query. */
export interface DnsView {
  /** Zones with names, user networks in creation order (ingress carries no names). */
  readonly zones: readonly NetworkZone[];
  readonly zoneByName: ReadonlyMap<string, NetworkZone>;
  /** Every network (ingress too) for scoping a client by subnet. */
  readonly subnets: readonly { readonly id: string; readonly cidr: Cidr }[];
  /** An endpoint address -> the networks its endpoint is attached to. */
  readonly endpointNetworks: { get(address: string): readonly string[] | undefined };
  /** Reverse name -> the name it points to (without the trailing dot) and the network it is on. */
  readonly ptr: { get(reverseName: string): PtrRecord | undefined };
  /** Names known on some network, for NXDOMAIN (not forwarding) to clients outside it. */
  readonly known: { has(name: string): boolean };
}
