module pulse-baseline

go 1.19
