#!/usr/bin/perl
# The mechanical change of the shared files from 10.0's names to the
# neutral ones both bases compile (include/hw/vfio/vfio-dma-container.h):
#   VFIOContainerBase           -> VFIODMAContainer (continuation lines
#                                  realigned)
#   vfio_container_dma_map(...) -> vfio_dma_container_map(..., section->mr)
#   vfio_dma_unmap_entry()      -> one vfio_dma_container_unmap() call
#   10.0's includes             -> "hw/vfio/vfio-dma-container.h"
# Run in the root of a tree (each commit of a 10.0 history); idempotent.
# Dies if anything of 10.0's names is left.
use strict;
use warnings;

my @files = qw(hw/vfio/dma-map.c hw/vfio/dma-query.c hw/vfio/dma-query-stub.c
               hw/vfio/dma-record.c include/hw/vfio/vfio-dma-map.h
               include/hw/vfio/vfio-dma-record.h);
my %drop = map { $_ => 1 } ('"exec/address-spaces.h"', '"exec/memory.h"',
                            '"hw/vfio/vfio-common.h"',
                            '"hw/vfio/vfio-container-base.h"');

# The innermost paren left open at the end of $s, or -1
sub open_paren {
    my ($s) = @_;
    my @st;
    for my $i (0 .. length($s) - 1) {
        my $c = substr($s, $i, 1);
        push @st, $i if $c eq '(';
        pop @st if $c eq ')' && @st;
    }
    return @st ? $st[-1] : -1;
}

sub depth {
    my ($s) = @_;
    my $o = () = $s =~ /\(/g;
    my $c = () = $s =~ /\)/g;
    return $o - $c;
}

sub rename_type {
    my @in = split /\n/, $_[0], -1;
    my @out;
    my ($shift, $depth) = (0, 0);
    for my $l (@in) {
        if ($depth > 0 && $shift > 0 && $l =~ /^( +)/ && length($1) > $shift) {
            substr($l, 0, $shift) = '';
        } elsif ($depth <= 0) {
            $shift = 0;
        }
        my $p = open_paren($l);
        my $n = 0;
        while ($l =~ /\bVFIOContainerBase\b/g) {
            $n++ if $p >= 0 && pos($l) <= $p;
        }
        $l =~ s/\bVFIOContainerBase\b/VFIODMAContainer/g;
        if ($depth <= 0) {
            $shift = $n;
        } else {
            $shift += $n;
        }
        $depth = ($depth > 0 ? $depth : 0) + depth($l);
        push @out, $l;
    }
    return join "\n", @out;
}

for my $f (@files) {
    next unless -f $f;
    local $/;
    open my $fh, '<', $f or die "$f: $!";
    my $s = <$fh>;
    close $fh;
    my $orig = $s;

    # Includes: the first of 10.0's becomes ours, the others go.
    my $done = $s =~ /#include "hw\/vfio\/vfio-dma-container.h"/;
    my @lines = split /\n/, $s, -1;
    my @keep;
    for my $l (@lines) {
        if ($l =~ /^#include (".*")$/ && $drop{$1}) {
            push @keep, '#include "hw/vfio/vfio-dma-container.h"' unless $done++;
            next;
        }
        next if $l =~ /^typedef struct VFIOContainerBase VFIOContainerBase;$/;
        push @keep, $l;
    }
    $s = join "\n", @keep;

    # The unmap of an entry: the whole 64-bit space is the base's business.
    # (the range it unmaps: the entry's, or its interior where entries
    # have a head and a tail)
    if ($s =~ /(vfio_dma_unmap_entry\(VFIOContainerBase \*bcontainer,\s*VFIODMAEntry \*entry\)\n\{\n)(.*?)\n\}\n/s) {
        my ($head, $body) = ($1, $2);
        my $w = $body =~ /vfio_dma_entry_interior_first/ ? 'interior_' : '';
        my $call = $w ?
            "    return vfio_dma_container_unmap(bcontainer,\n" .
            "                                    vfio_dma_entry_interior_first(entry),\n" .
            "                                    vfio_dma_entry_interior_last(entry));\n" :
            "    return vfio_dma_container_unmap(bcontainer, vfio_dma_entry_first(entry),\n" .
            "                                    vfio_dma_entry_last(entry));\n";
        $s =~ s/\Q$head$body\E\n\}\n/$head$call}\n/s;
    }

    # Maps pass the section's MemoryRegion (IOMMU_IOAS_MAP_FILE on 10.2).
    while ($s =~ /\bvfio_container_dma_map\((?=bcontainer)/g) {
        my $start = pos($s);
        my ($d, $i) = (1, $start);
        for (; $i < length($s) && $d; $i++) {
            my $c = substr($s, $i, 1);
            $d++ if $c eq '(';
            $d-- if $c eq ')';
        }
        my $args = substr($s, $start, $i - 1 - $start);
        $args =~ /section->readonly\s*$/ or die "$f: a map call without section->readonly: $args";
        substr($s, $start - 23, $i - $start + 23) =
            "vfio_dma_container_map($args, section->mr)";
        pos($s) = $start;
    }

    $s = rename_type($s);

    for my $bad ('VFIOContainerBase', 'vfio_container_dma_map(bcontainer',
                 'vfio_container_dma_unmap(') {
        die "$f: '$bad' is left after the conversion\n" if index($s, $bad) >= 0;
    }
    for my $l (split /\n/, $s) {
        warn "$f: over 80 columns: $l\n" if length($l) > 80;
    }
    if ($s ne $orig) {
        open $fh, '>', $f or die "$f: $!";
        print $fh $s;
        close $fh;
    }
}

# The base's half: 10.0's container header, with the record.
if (-f 'hw/vfio/dma-map.c' && !-f 'include/hw/vfio/vfio-dma-container.h') {
    my $h = $ENV{VFIO_DMA_CONTAINER_H} or die "VFIO_DMA_CONTAINER_H is not set\n";
    system('cp', $h, 'include/hw/vfio/vfio-dma-container.h') == 0 or die;
}
