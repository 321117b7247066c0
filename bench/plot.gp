# bench/plot.gp - results.png from bench/report.awk's data files.
# gnuplot -e "qdat='query.dat'; cdat='churn.dat'; out='results.png'" bench/plot.gp
#   qdat: header of method titles, then "N t1 t2 ..." (median µs per query, ? if skipped)
#   cdat: "config median_rate ratio_to_bare" per churn configuration

set terminal pngcairo noenhanced size 1400,560 font ",10"
set output out
set datafile missing "?"
set multiplot layout 1,2

set title "Query cost vs held inbound connections (median per query)"
set logscale xy
set xlabel "held connections N"
set ylabel "µs per query"
set format y "%g"
set grid
set key below
plot for [i=2:*] qdat using 1:i with linespoints lw 2 pt 7 title columnheader(i)

unset logscale
set title "Loopback connection churn (median over rounds)"
set xlabel ""
set ylabel "connections per second"
set yrange [0:*]
set style fill solid 0.6
set boxwidth 0.6
unset key
plot cdat using 0:2:xtic(1) with boxes, \
     cdat using 0:2:(sprintf("%.3f", $3)) with labels offset 0,1

unset multiplot
